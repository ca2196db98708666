"""A throw-away PKI for tests (needs the ``cryptography`` package): a CA, a server certificate
for localhost/127.0.0.1 and client certificates by CN, written as PEM files."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class Ca:
    def __init__(self, directory, name):
        self.dir, self.name = directory, name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = self._sign(name, self.key, ca=True)
        self.file = directory / (name + "-ca.pem")
        self.file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _sign(self, cn, key, ca=False, server=False):
        now = datetime.datetime.now(datetime.timezone.utc)
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(self.name))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
        return b.sign(self.key, hashes.SHA256())

    def issue(self, cn, server=False):
        """Writes <cn>.pem and <cn>.key signed by this CA; returns their paths."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(cn, key, server=server)
        cert_file, key_file = self.dir / (cn + ".pem"), self.dir / (cn + ".key")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_file, key_file
