import Foundation

/// JSON Schemas (draft 2020-12) of the daemon's payloads, embedded so recordings carry them
/// (MCAP schema records) and copied to docs/schemas/ (SchemaTests checks they agree).
public enum Schemas {
    /// `intent` topic payload.
    public static let intent = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "title": "minigpt.intent",
      "description": "One decision of mgptd, published on the intent topic every tick (docs/protocol.md).",
      "type": "object",
      "required": ["v", "seq", "mono_ns", "wall_ns", "intent", "verb", "arg", "intent_index", "confidence",
                   "gated", "reason", "proposal_index", "proposal_probability", "entropy", "head_disagreement",
                   "grammar_mass", "fresh", "exit_layer", "anytime", "obs_seq", "obs_age_us", "tick_us", "deadline_missed", "model"],
      "properties": {
        "v": {"const": 1},
        "seq": {"type": "integer", "minimum": 0, "description": "decision number since the daemon started (ticks and decisions on arrival)"},
        "mono_ns": {"type": "integer", "description": "CLOCK_MONOTONIC time the decision was taken (after draining the sensor socket), ns"},
        "wall_ns": {"type": "integer", "description": "CLOCK_REALTIME when the message was written, ns since the epoch"},
        "intent": {"type": "string", "description": "text form, e.g. FORWARD(0.5), TURN_LEFT(0.25), STOP"},
        "verb": {"enum": ["STOP", "DONE", "BACKUP", "FORWARD", "TURN_LEFT", "TURN_RIGHT"]},
        "arg": {"type": ["number", "null"], "description": "fraction of max speed / turn rate; null for verbs without one"},
        "intent_index": {"type": "integer", "minimum": 0, "maximum": 12},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1, "description": "calibrated probability that the verb is right (controller.calibration; the raw verb probability without one); 0 whenever gated"},
        "gated": {"type": "boolean", "description": "true: the safe fallback replaced the model's proposal"},
        "reason": {"enum": ["ok", "high_entropy", "head_disagreement", "low_confidence", "off_grammar",
                            "stale_sensor", "no_sensor", "overrun", "holding", "sensor_fault", "exit_disagreement", "unknown_instruction"]},
        "proposal_index": {"type": "integer", "minimum": -1, "maximum": 12, "description": "-1 when the model did not run this tick"},
        "proposal_probability": {"type": "number"},
        "entropy": {"type": "number", "description": "nats, over the intent block"},
        "head_disagreement": {"type": "number", "minimum": 0, "maximum": 1},
        "grammar_mass": {"type": "number", "minimum": 0, "maximum": 1},
        "exit_disagreement": {"type": "number", "minimum": 0, "maximum": 1, "description": "JS divergence (÷ ln 2) of the verb distributions read at the first early-exit layer and at the last"},
        "temporal_disagreement": {"type": "number", "minimum": 0, "maximum": 1, "description": "JS divergence (÷ ln 2) of this decision's verb distribution and the previous one's"},
        "sensor_faults": {"type": "array", "items": {"enum": ["scanner_missing", "scanner_frozen", "scanner_noisy", "contradiction", "odometry_missing", "odometry_frozen", "odometry_noisy", "camera_frozen", "camera_noisy", "camera_missing", "scanner_stale", "camera_stale", "odometry_stale"]}, "description": "frame checks that tripped (reason sensor_fault when controller.sensor_checks.enabled)"},
        "on_arrival": {"type": "boolean", "description": "true when the decision was taken as the frame arrived rather than at a fixed tick (loop.decide_on_arrival)"},
        "fresh": {"type": "boolean", "description": "true when this tick ran the model on a new observation"},
        "exit_layer": {"type": "integer", "minimum": 0, "description": "layers the decision ran fully: the model's depth, less after an early exit; 0 before the first run"},
        "anytime": {"type": "boolean", "description": "true when the decision ran at the anytime depth because the previous tick overran (loop.overrun_policy early_exit)"},
        "obs_seq": {"type": "integer", "description": "seq of the observation used; -1 before the first"},
        "obs_age_us": {"type": "integer"},
        "tick_us": {"type": "integer", "description": "wake to decision, µs"},
        "deadline_missed": {"type": "boolean"},
        "model": {"type": "string"}
      }
    }
    """#

    /// `telemetry` topic payload.
    public static let telemetry = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "title": "minigpt.telemetry",
      "description": "Per-tick timings (µs) and counters of mgptd.",
      "type": "object",
      "required": ["v", "seq", "wake_late_us", "drain_us", "think_us", "publish_us", "tick_us", "tokens_in",
                   "context_positions", "frames_accepted", "frames_malformed", "frames_oversized", "overruns", "deadline_misses"],
      "properties": {
        "v": {"const": 1}, "seq": {"type": "integer"}, "wake_late_us": {"type": "integer"},
        "drain_us": {"type": "integer"}, "think_us": {"type": "integer"}, "publish_us": {"type": "integer"},
        "tick_us": {"type": "integer"}, "tokens_in": {"type": "integer"}, "context_positions": {"type": "integer"},
        "frames_accepted": {"type": "integer"}, "frames_malformed": {"type": "integer"},
        "frames_oversized": {"type": "integer"}, "overruns": {"type": "integer"}, "deadline_misses": {"type": "integer"},
        "on_arrival": {"type": "boolean", "description": "the decision was taken as its frame arrived"}
      }
    }
    """#

    /// `status` topic payload.
    public static let status = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "title": "minigpt.status",
      "description": "mgptd heartbeat (every log.status_interval_ms) and final message (state stopped).",
      "type": "object",
      "required": ["v", "mono_ns", "wall_ns", "state", "uptime_ms", "rate_hz", "ticks", "model_runs",
                   "frames_accepted", "frames_malformed", "frames_oversized", "frames_skipped", "gated", "watchdog",
                   "overruns", "deadline_misses", "evictions", "anytime", "early_exits", "record_dropped", "publish_dropped", "max_tick_us", "model"],
      "properties": {
        "v": {"const": 1}, "mono_ns": {"type": "integer"}, "wall_ns": {"type": "integer"},
        "state": {"enum": ["starting", "running", "stopped"]}, "uptime_ms": {"type": "integer"},
        "rate_hz": {"type": "number"}, "ticks": {"type": "integer"}, "model_runs": {"type": "integer"},
        "frames_accepted": {"type": "integer"}, "frames_malformed": {"type": "integer"},
        "frames_oversized": {"type": "integer"}, "frames_skipped": {"type": "integer"},
        "frames_too_fast": {"type": "integer", "description": "frames closer than half of context.frame_interval_ms to the previous one: published faster than the model was trained for"},
        "gated": {"type": "integer"}, "watchdog": {"type": "integer"}, "overruns": {"type": "integer"},
        "deadline_misses": {"type": "integer"}, "evictions": {"type": "integer"},
        "anytime": {"type": "integer", "description": "decisions taken at the anytime depth after an overrun"},
        "early_exits": {"type": "integer", "description": "decisions the confidence exit (model.exit_entropy) stopped before the last layer"},
        "record_dropped": {"type": "integer"}, "publish_dropped": {"type": "integer", "description": "messages the publisher ring was too full for, plus libzmq send failures"},
        "decisions": {"type": "integer", "description": "model runs: fixed ticks and decisions on arrival"},
        "arrival_decisions": {"type": "integer", "description": "decisions taken as their frame arrived (loop.decide_on_arrival)"},
        "early_ticks": {"type": "integer", "description": "ticks run early because a frame arrived too close to the deadline"},
        "arrivals_deferred": {"type": "integer", "description": "frames that waited for the tick (a model run already took place this period)"},
        "warm_passes": {"type": "integer", "description": "keep-warm passes between decisions: the model's weights and KV cache read back into the CPU caches (loop.keep_warm_us)"},
        "publish_queue_full": {"type": "integer", "description": "messages dropped because the publisher ring was full"},
        "max_tick_us": {"type": "integer"}, "model": {"type": "string"}
      }
    }
    """#

    /// `obs` payload: the simulator's frame (the same text as docs/schemas/obs.schema.json).
    public static let obs = #"""
    {
      "$schema": "https://json-schema.org/draft/2020-12/schema",
      "$id": "https://github.com/minigpt/minigpt/docs/schemas/obs.schema.json",
      "title": "ObservationFrame",
      "description": "Payload of the `obs` topic (frame 1 of the multipart [\"obs\", payload]): one fused observation of the robot's senses per tick. Metres, seconds, radians; bearings counter-clockwise from the robot's heading (positive = left). Frames never flag sensor faults. See docs/sim.md.",
      "type": "object",
      "required": ["v", "seq", "t", "ranges", "range_max", "detections", "odom", "bump", "battery", "route"],
      "additionalProperties": true,
      "properties": {
        "v": {"description": "Schema version (2 added route; a decoder rejects any other).", "const": 2},
        "seq": {"description": "Frame number, from 0 at the start of the episode (restarts with a new episode).", "type": "integer", "minimum": 0},
        "t": {"description": "Simulation time in seconds since the start of the episode.", "type": "number", "minimum": 0},
        "ranges": {
          "description": "Range scanner: 16 distances (m) from the robot's centre, beam i at bearing i * 22.5 degrees; clipped to range_max. Empty when the scanner delivered nothing this tick.",
          "type": "array",
          "items": {"type": "number", "minimum": 0},
          "oneOf": [{"maxItems": 0}, {"minItems": 16, "maxItems": 16}]
        },
        "range_max": {"description": "Scanner maximum range (m); a reading equal to it means nothing was hit.", "type": "number", "exclusiveMinimum": 0},
        "detections": {
          "description": "Camera-like detector: objects inside the field of view (120 degrees, 6 m), nearest first.",
          "type": "array",
          "items": {
            "type": "object",
            "required": ["colour", "kind", "bearing", "distance"],
            "properties": {
              "colour": {"description": "Colour name; may be one never seen in training.", "type": "string"},
              "kind": {"description": "Object kind: box, ball, cone or door.", "type": "string"},
              "bearing": {"description": "Bearing of the object's centre (rad), positive to the left.", "type": "number"},
              "distance": {"description": "Distance from the robot's centre to the object's centre (m).", "type": "number", "minimum": 0}
            }
          }
        },
        "odom": {
          "description": "Wheel odometry: pose integrated in the start frame (drifts) and measured velocities.",
          "type": "object",
          "required": ["x", "y", "theta", "v", "w"],
          "properties": {
            "x": {"type": "number", "description": "m"},
            "y": {"type": "number", "description": "m"},
            "theta": {"type": "number", "description": "rad, wrapped to (-pi, pi]"},
            "v": {"type": "number", "description": "forward speed, m/s (negative when backing up)"},
            "w": {"type": "number", "description": "turn rate, rad/s (positive = left)"}
          }
        },
        "bump": {"description": "Bumper pressed.", "type": "boolean"},
        "battery": {"description": "State of charge.", "type": "number", "minimum": 0, "maximum": 1},
        "route": {
          "description": "The global planner's hint (as a navigation stack hands its local controller), or null when it has no route.",
          "oneOf": [
            {"type": "null"},
            {"type": "object", "required": ["bearing", "distance"], "properties": {
              "bearing": {"description": "Bearing (rad, positive = left) to the carrot 0.45 m along the planned path, or to the target once it is near with a clear lane.", "type": "number"},
              "distance": {"description": "Metres left to the stopping point; 0 = arrived (stop, then DONE).", "type": "number", "minimum": 0}
            }}
          ]
        },
        "stamps": {
          "description": "Optional: when each sensor's reading was taken (s, the clock of t), from its driver's message stamp. A stalled driver keeps its last stamp, so the daemon flags <sensor>_stale when t - stamp exceeds controller.sensor_checks.max_stamp_age_ms. Absent or null: not reported.",
          "oneOf": [
            {"type": "null"},
            {"type": "object", "properties": {
              "scanner": {"type": ["number", "null"]},
              "camera": {"type": ["number", "null"]},
              "odom": {"type": ["number", "null"]}
            }}
          ]
        }
      }
    }
    """#

    /// Schemas by recording channel.
    public static let forRecording: [RecordChannel: String] = [.obs: obs, .intent: intent]

    /// Schemas by name (SchemaTests compares them with docs/schemas/).
    public static let all: [String: String] = ["intent": intent, "telemetry": telemetry, "status": status, "obs": obs]
}
