package dev.roadless.optimizer.golden;

import com.fasterxml.jackson.databind.JsonNode;
import dev.roadless.optimizer.core.Hyperparameters;
import dev.roadless.optimizer.core.Variant;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Set;

/**
 * Maps a golden file's {@code optimizer}, {@code implementation}, {@code hyperparameters} and
 * {@code base_optimizer} onto a {@link Variant} and {@link Hyperparameters}. Anything it does not
 * understand fails the case: a silently ignored setting would make a pass meaningless.
 */
final class GoldenMapping {
  /** Switches that choose an implementation but do not change the math. */
  private static final Set<String> IMPLEMENTATION_SWITCHES =
      Set.of("foreach", "fused", "capturable", "differentiable");

  record Mapped(Variant variant, Hyperparameters hp) {}

  private GoldenMapping() {}

  static Mapped map(JsonNode root) {
    String cls = root.path("optimizer").asText("");
    String impl = root.path("implementation").asText("");
    Keys hp = new Keys(cls, root.path("hyperparameters"));
    Mapped m =
        switch (cls) {
          case "SGDScheduleFree", "SGDScheduleFreeReference" -> sgd(hp);
          case "AdamWScheduleFree", "AdamWScheduleFreeReference" -> adamw(hp);
          case "AdamWScheduleFreePaper" -> paper(hp);
          case "RAdamScheduleFree" -> radam(hp);
          case "ScheduleFreeWrapperReference", "ScheduleFreeWrapper" -> wrapper(hp, root);
          default -> throw new IllegalArgumentException("optimizer class not understood: " + cls);
        };
    if (!Set.of("efficient", "reference", "wrapper_reference").contains(impl)) {
      throw new IllegalArgumentException("implementation not understood: '" + impl + "'");
    }
    hp.requireAllUsed();
    m.hp().validate(m.variant());
    return m;
  }

  private static Mapped sgd(Keys k) {
    Hyperparameters.Builder b = Hyperparameters.defaults(Variant.SGD).toBuilder();
    b.lr(k.num("lr")).beta(k.num("momentum")).weightDecay(k.num("weight_decay"));
    schedule(k, b, true);
    return new Mapped(Variant.SGD, b.build());
  }

  private static Mapped adamw(Keys k) {
    Hyperparameters.Builder b = adamCommon(k, Variant.ADAMW, true);
    b.decayAtZ(k.boolOr("decay_at_z", false)).innerMomentum(k.numOr("inner_momentum", 0.0));
    return new Mapped(Variant.ADAMW, b.build());
  }

  private static Mapped paper(Keys k) {
    return new Mapped(Variant.ADAMW_PAPER, adamCommon(k, Variant.ADAMW_PAPER, true).build());
  }

  private static Mapped radam(Keys k) {
    Hyperparameters.Builder b = adamCommon(k, Variant.RADAM, false);
    b.silentSgdPhase(k.boolOr("silent_sgd_phase", true));
    k.requireFalse("cautious");
    return new Mapped(Variant.RADAM, b.build());
  }

  private static Hyperparameters.Builder adamCommon(Keys k, Variant v, boolean warmup) {
    Hyperparameters.Builder b = Hyperparameters.defaults(v).toBuilder();
    JsonNode betas = k.node("betas");
    b.lr(k.num("lr")).beta(betas.get(0).asDouble()).beta2(betas.get(1).asDouble());
    b.eps(k.num("eps")).weightDecay(k.num("weight_decay"));
    schedule(k, b, warmup);
    return b;
  }

  private static void schedule(Keys k, Hyperparameters.Builder b, boolean warmup) {
    if (warmup) {
      b.warmupSteps(k.node("warmup_steps").asLong());
    }
    b.r(k.numOr("r", 0.0)).weightLrPower(k.numOr("weight_lr_power", 2.0));
  }

  private static Mapped wrapper(Keys k, JsonNode root) {
    JsonNode base = root.path("base_optimizer");
    String baseClass = base.path("class").asText("");
    Keys bk = new Keys(baseClass, base.path("hyperparameters"));
    Variant v;
    Hyperparameters.Builder b;
    if (baseClass.equals("torch.optim.SGD")) {
      v = Variant.WRAPPER_SGD;
      b = Hyperparameters.defaults(v).toBuilder();
      b.baseMomentum(bk.numOr("momentum", 0.0)).baseDampening(bk.numOr("dampening", 0.0));
      b.baseNesterov(bk.boolOr("nesterov", false));
    } else if (baseClass.equals("torch.optim.Adam")) {
      v = Variant.WRAPPER_ADAM;
      b = Hyperparameters.defaults(v).toBuilder();
      JsonNode betas = bk.node("betas");
      b.baseMomentum(betas.get(0).asDouble()).beta2(betas.get(1).asDouble()).eps(bk.num("eps"));
      bk.requireFalse("amsgrad");
      bk.requireFalse("decoupled_weight_decay");
    } else {
      throw new IllegalArgumentException("wrapped base optimizer not understood: " + baseClass);
    }
    b.lr(bk.num("lr")).weightDecay(bk.numOr("weight_decay", 0.0));
    bk.requireFalse("maximize");
    bk.requireAllUsed();
    b.beta(k.num("momentum")).weightDecayAtY(k.numOr("weight_decay_at_y", 0.0));
    b.r(k.numOr("r", 0.0)).weightLrPower(k.numOr("weight_lr_power", 2.0));
    return new Mapped(v, b.build());
  }

  /** The keys of one hyperparameter object, remembering which were read. */
  private static final class Keys {
    private final String owner;
    private final JsonNode node;
    private final Set<String> used = new HashSet<>();

    Keys(String owner, JsonNode node) {
      this.owner = owner;
      this.node = node;
      if (!node.isObject()) {
        throw new IllegalArgumentException(owner + ": hyperparameters missing");
      }
    }

    JsonNode node(String key) {
      JsonNode n = node.get(key);
      if (n == null || n.isNull()) {
        throw new IllegalArgumentException(owner + ": hyperparameter '" + key + "' missing");
      }
      used.add(key);
      return n;
    }

    double num(String key) {
      JsonNode n = node(key);
      if (!n.isNumber()) {
        throw new IllegalArgumentException(owner + ": '" + key + "' is not a number: " + n);
      }
      return n.asDouble();
    }

    double numOr(String key, double fallback) {
      return node.has(key) ? num(key) : fallback;
    }

    boolean boolOr(String key, boolean fallback) {
      if (!node.has(key)) {
        return fallback;
      }
      JsonNode n = node(key);
      if (!n.isBoolean()) {
        throw new IllegalArgumentException(owner + ": '" + key + "' is not a boolean: " + n);
      }
      return n.asBoolean();
    }

    void requireFalse(String key) {
      if (boolOr(key, false)) {
        throw new IllegalArgumentException(owner + ": " + key + "=true is not supported");
      }
    }

    void requireAllUsed() {
      for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
        String key = it.next();
        if (!used.contains(key) && !IMPLEMENTATION_SWITCHES.contains(key)) {
          throw new IllegalArgumentException(
              owner + ": hyperparameter '" + key + "' = " + node.get(key) + " not understood");
        }
      }
    }
  }
}
