package dev.roadless.optimizer.core;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A deliberately simple Schedule-Free implementation for differential tests: one tensor at a time,
 * one whole-array PyTorch op at a time ({@link TorchOps}), the upstream reference classes'
 * statement order, and y stored explicitly as they do. No threads, no fusion, no derived y.
 */
final class SimpleReference {
  private final Variant variant;
  private final Map<String, Group> groups = new LinkedHashMap<>();
  private final Map<String, float[][]> state = new HashMap<>(); // name -> {z, x, y, v, m}

  private static final class Group {
    final List<String> tensors;
    Hyperparameters hp;
    long k;
    double lrMax;
    double weightSum;
    float adamStep;

    Group(GroupSpec spec, double lrMax) {
      tensors = spec.tensorNames();
      hp = spec.hyperparameters();
      this.lrMax = lrMax;
    }
  }

  SimpleReference(Variant variant, List<GroupSpec> specs, Map<String, float[]> initial) {
    this.variant = variant;
    for (GroupSpec g : specs) {
      groups.put(g.name(), new Group(g, variant.isWrapper() ? 0.0 : -1.0));
    }
    initial.forEach(
        (name, a) -> {
          int n = a.length;
          state.put(name, new float[][] {a.clone(), a.clone(), a.clone(), new float[n], null});
        });
  }

  void setHyperparameters(String group, Hyperparameters hp) {
    groups.get(group).hp = hp;
  }

  float[] z(String t) {
    return state.get(t)[0];
  }

  float[] x(String t) {
    return state.get(t)[1];
  }

  float[] y(String t) {
    return state.get(t)[2];
  }

  float[] v(String t) {
    return state.get(t)[3];
  }

  float[] m(String t) {
    return state.get(t)[4];
  }

  void step(Map<String, float[][]> grads) {
    for (Group g : groups.values()) {
      Hyperparameters hp = g.hp;
      double lr = scheduledLr(hp, g.k);
      g.lrMax = Math.max(lr, g.lrMax);
      double weight = Math.pow(g.k + 1, hp.r()) * Math.pow(g.lrMax, hp.weightLrPower());
      g.weightSum = g.weightSum + weight;
      double c = g.weightSum == 0 ? 0 : weight / g.weightSum;
      g.adamStep = g.adamStep + 1f;
      for (String t : g.tensors) {
        float[][] s = state.get(t);
        float[] grad = TorchOps.mean(grads.get(t));
        switch (variant) {
          case SGD -> sgd(s, grad, hp, lr);
          case ADAMW -> adamw(s, grad, hp, lr, g.k);
          case ADAMW_PAPER -> paper(s, grad, hp, lr);
          case RADAM -> radam(s, grad, hp, lr, g.k);
          case WRAPPER_SGD -> wrapperSgd(s, grad, hp, lr, g.k);
          case WRAPPER_ADAM -> wrapperAdam(s, grad, hp, lr, g.adamStep);
        }
        if (variant.isWrapper()) {
          TorchOps.lerp(s[1], s[0], c);
          s[2] = s[1].clone();
          TorchOps.lerp(s[2], s[0], 1 - hp.beta());
        } else {
          TorchOps.mul(s[1], 1 - c);
          TorchOps.add(s[1], s[0], c);
          s[2] = s[1].clone();
          TorchOps.mul(s[2], hp.beta());
          TorchOps.add(s[2], s[0], 1 - hp.beta());
        }
      }
      g.k++;
    }
  }

  private double scheduledLr(Hyperparameters hp, long k) {
    double sched = k < hp.warmupSteps() ? (double) (k + 1) / hp.warmupSteps() : 1.0;
    return switch (variant) {
      case SGD, ADAMW -> hp.lr() * sched;
      case ADAMW_PAPER -> hp.lr() * sched * Math.sqrt(1 - Math.pow(hp.beta2(), k + 1));
      case RADAM -> hp.lr() * radamRect(hp, k + 1);
      case WRAPPER_SGD, WRAPPER_ADAM -> hp.lr();
    };
  }

  private static double rhoT(double beta2, long t) {
    double rhoInf = 2 / (1 - beta2) - 1;
    return rhoInf - 2 * t * Math.pow(beta2, t) / (1 - Math.pow(beta2, t));
  }

  private static double radamRect(Hyperparameters hp, long t) {
    double rhoInf = 2 / (1 - hp.beta2()) - 1;
    double rho = rhoT(hp.beta2(), t);
    if (rho > 4) {
      return Math.sqrt((rho - 4) * (rho - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rho));
    }
    return hp.silentSgdPhase() ? 0.0 : 1.0;
  }

  private static void sgd(float[][] s, float[] g, Hyperparameters hp, double lr) {
    if (hp.weightDecay() != 0) {
      TorchOps.add(g, s[2], hp.weightDecay());
    }
    TorchOps.add(s[0], g, -lr);
  }

  private static void adamw(float[][] s, float[] g, Hyperparameters hp, double lr, long k) {
    if (hp.weightDecay() != 0) {
      TorchOps.add(s[0], hp.decayAtZ() ? s[0].clone() : s[2], -(lr * hp.weightDecay()));
    }
    TorchOps.mul(s[3], hp.beta2());
    TorchOps.addcmul(s[3], g, g, 1 - hp.beta2());
    float[] denom = s[3].clone();
    TorchOps.div(denom, 1 - Math.pow(hp.beta2(), k + 1));
    TorchOps.sqrt(denom);
    TorchOps.addScalar(denom, hp.eps());
    float[] u = g;
    if (hp.innerMomentum() != 0) {
      if (s[4] == null) {
        s[4] = new float[g.length];
      }
      TorchOps.mul(s[4], hp.innerMomentum());
      TorchOps.add(s[4], g, 1 - hp.innerMomentum());
      u = s[4].clone();
      TorchOps.div(u, 1 - Math.pow(hp.innerMomentum(), k + 1));
    }
    TorchOps.addcdiv(s[0], u, denom, -lr);
  }

  private static void paper(float[][] s, float[] g, Hyperparameters hp, double lr) {
    TorchOps.mul(s[3], hp.beta2());
    TorchOps.addcmul(s[3], g, g, 1 - hp.beta2());
    float[] denom = s[3].clone();
    TorchOps.sqrt(denom);
    TorchOps.addScalar(denom, hp.eps());
    TorchOps.div(g, denom);
    if (hp.weightDecay() != 0) {
      TorchOps.add(g, s[2], hp.weightDecay());
    }
    TorchOps.add(s[0], g, -lr);
  }

  private static void radam(float[][] s, float[] g, Hyperparameters hp, double lr, long k) {
    TorchOps.mul(s[3], hp.beta2());
    TorchOps.addcmul(s[3], g, g, 1 - hp.beta2());
    if (rhoT(hp.beta2(), k + 1) > 4) {
      float[] denom = s[3].clone();
      TorchOps.div(denom, 1 - Math.pow(hp.beta2(), k + 1));
      TorchOps.sqrt(denom);
      TorchOps.addScalar(denom, hp.eps());
      TorchOps.div(g, denom);
    }
    if (hp.weightDecay() != 0) {
      TorchOps.add(g, s[2], hp.weightDecay());
    }
    TorchOps.add(s[0], g, -lr);
  }

  private static void wrapperSgd(float[][] s, float[] g, Hyperparameters hp, double lr, long k) {
    if (hp.weightDecayAtY() != 0) {
      TorchOps.add(s[0], s[2], -(lr * hp.weightDecayAtY()));
    }
    if (hp.weightDecay() != 0) {
      TorchOps.add(g, s[0], hp.weightDecay());
    }
    if (hp.baseMomentum() != 0) {
      if (k == 0) {
        s[4] = g.clone();
      } else {
        TorchOps.mul(s[4], hp.baseMomentum());
        TorchOps.add(s[4], g, 1 - hp.baseDampening());
      }
      if (hp.baseNesterov()) {
        TorchOps.add(g, s[4], hp.baseMomentum());
      } else {
        g = s[4];
      }
    }
    TorchOps.add(s[0], g, -lr);
  }

  private static void wrapperAdam(float[][] s, float[] g, Hyperparameters hp, double lr, float t) {
    if (hp.weightDecayAtY() != 0) {
      TorchOps.add(s[0], s[2], -(lr * hp.weightDecayAtY()));
    }
    if (hp.weightDecay() != 0) {
      TorchOps.add(g, s[0], hp.weightDecay());
    }
    if (s[4] == null) {
      s[4] = new float[g.length];
    }
    TorchOps.lerp(s[4], g, 1 - hp.baseMomentum());
    TorchOps.mul(s[3], hp.beta2());
    TorchOps.addcmul(s[3], g, g, 1 - hp.beta2());
    double bc1 = 1 - Math.pow(hp.baseMomentum(), t);
    double bc2 = 1 - Math.pow(hp.beta2(), t);
    float[] denom = s[3].clone();
    TorchOps.sqrt(denom);
    TorchOps.div(denom, Math.sqrt(bc2));
    TorchOps.addScalar(denom, hp.eps());
    TorchOps.addcdiv(s[0], s[4], denom, -(lr / bc1));
  }
}
