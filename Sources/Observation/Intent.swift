/// A high-level motion intent: what the policy (expert or model) wants the robot to do next.
///
/// The vocabulary is small and closed so that it fits one block of reserved tokens:
///
/// | index | text                | meaning                                   |
/// | ----- | ------------------- | ----------------------------------------- |
/// | 0     | `STOP`              | brake to standstill                       |
/// | 1     | `DONE`              | stop and declare the task finished        |
/// | 2     | `BACKUP`            | reverse slowly (fixed speed)              |
/// | 3–6   | `FORWARD(s)`        | drive straight, s ∈ {0.25, 0.5, 0.75, 1}  |
/// | 7–9   | `TURN_LEFT(r)`      | turn in place, r ∈ {0.25, 0.5, 1}         |
/// | 10–12 | `TURN_RIGHT(r)`     | turn in place, r ∈ {0.25, 0.5, 1}         |
///
/// Arguments are fractions of the robot's maximum speed / turn rate. Indices are stable: the
/// trained model's intent tokens depend on them, so new intents may only be appended.
public struct Intent: Hashable, Sendable, CustomStringConvertible {
    /// The intent's verb.
    public enum Kind: String, CaseIterable, Sendable {
        /// Brake to standstill.
        case stop = "STOP"
        /// Stop and declare the task finished.
        case done = "DONE"
        /// Reverse slowly.
        case backup = "BACKUP"
        /// Drive straight ahead at a fraction of the maximum speed.
        case forward = "FORWARD"
        /// Turn left in place at a fraction of the maximum turn rate.
        case turnLeft = "TURN_LEFT"
        /// Turn right in place at a fraction of the maximum turn rate.
        case turnRight = "TURN_RIGHT"

        /// The discretised argument values this verb takes (empty: no argument).
        public var levels: [Float] {
            switch self {
            case .stop, .done, .backup: return []
            case .forward: return Intent.speedLevels
            case .turnLeft, .turnRight: return Intent.turnLevels
            }
        }
    }

    /// `FORWARD` speed levels (fraction of maximum speed).
    public static let speedLevels: [Float] = [0.25, 0.5, 0.75, 1.0]
    /// `TURN_LEFT` / `TURN_RIGHT` rate levels (fraction of maximum turn rate).
    public static let turnLevels: [Float] = [0.25, 0.5, 1.0]

    /// The verb.
    public let kind: Kind
    /// Index into `kind.levels` (0 for verbs without an argument).
    public let level: Int

    /// An intent from its verb and argument level; nil if the level does not exist for the verb.
    public init?(kind: Kind, level: Int = 0) {
        let n = kind.levels.count
        guard (n == 0 && level == 0) || (0..<n).contains(level) else { return nil }
        self.kind = kind
        self.level = level
    }

    private init(unchecked kind: Kind, _ level: Int) {
        self.kind = kind
        self.level = level
    }

    /// Brake to standstill.
    public static let stop = Intent(unchecked: .stop, 0)
    /// Stop and declare the task finished.
    public static let done = Intent(unchecked: .done, 0)
    /// Reverse slowly.
    public static let backup = Intent(unchecked: .backup, 0)
    /// `FORWARD(speedLevels[level])`; `level` is clamped into range.
    public static func forward(level: Int) -> Intent {
        Intent(unchecked: .forward, min(max(level, 0), speedLevels.count - 1))
    }
    /// `TURN_LEFT(turnLevels[level])`; `level` is clamped into range.
    public static func turnLeft(level: Int) -> Intent {
        Intent(unchecked: .turnLeft, min(max(level, 0), turnLevels.count - 1))
    }
    /// `TURN_RIGHT(turnLevels[level])`; `level` is clamped into range.
    public static func turnRight(level: Int) -> Intent {
        Intent(unchecked: .turnRight, min(max(level, 0), turnLevels.count - 1))
    }

    /// Every intent, in index order: `all[i].index == i`.
    public static let all: [Intent] = Kind.allCases.flatMap { kind in
        kind.levels.isEmpty ? [Intent(unchecked: kind, 0)]
                            : kind.levels.indices.map { Intent(unchecked: kind, $0) }
    }

    /// Number of distinct intents (size of the reserved intent token block is 32).
    public static let tokenCount = 13

    /// The argument as a fraction of the maximum, or nil for verbs without one.
    public var argument: Float? {
        let levels = kind.levels
        return levels.isEmpty ? nil : levels[level]
    }

    /// Stable index in `0..<Intent.tokenCount`.
    public var index: Int {
        switch kind {
        case .stop: return 0
        case .done: return 1
        case .backup: return 2
        case .forward: return 3 + level
        case .turnLeft: return 7 + level
        case .turnRight: return 10 + level
        }
    }

    /// The intent with this index, or nil when `index` is outside `0..<Intent.tokenCount`.
    public init?(index: Int) {
        guard (0..<Intent.tokenCount).contains(index) else { return nil }
        self = Intent.all[index]
    }

    /// Text form: `STOP`, `DONE`, `BACKUP`, `FORWARD(0.5)`, `TURN_LEFT(0.25)`, ...
    public var text: String {
        guard let arg = argument else { return kind.rawValue }
        return "\(kind.rawValue)(\(arg))"
    }

    /// Same as `text`.
    public var description: String { text }

    /// Parses the text form. Accepts surrounding spaces, `STOP()` for `STOP`, and any argument
    /// within 0.01 of a level (`FORWARD(0.50)`); rejects everything else with a precise error.
    public init(parsing text: String) throws(IntentParseError) {
        let s = text.trimmingSpaces()
        var name = Substring(s)
        var argText: Substring? = nil
        if let open = s.firstIndex(of: "(") {
            guard s.last == ")" else { throw IntentParseError(text: text, reason: "missing ')'") }
            name = s[..<open]
            argText = s[s.index(after: open)..<s.index(before: s.endIndex)]
        }
        guard let kind = Kind(rawValue: String(name)) else {
            throw IntentParseError(text: text, reason: "unknown verb '\(name)', expected one of "
                + Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let levels = kind.levels
        if levels.isEmpty {
            guard argText == nil || argText!.isEmpty else {
                throw IntentParseError(text: text, reason: "\(kind.rawValue) takes no argument")
            }
            self.init(unchecked: kind, 0)
            return
        }
        guard let a = argText, let value = Float(String(a).trimmingSpaces()) else {
            throw IntentParseError(text: text, reason: "\(kind.rawValue) needs a numeric argument, one of \(levels)")
        }
        guard let level = levels.firstIndex(where: { abs($0 - value) <= 0.01 }) else {
            throw IntentParseError(text: text, reason: "argument \(value) is not a level of \(kind.rawValue), expected one of \(levels)")
        }
        self.init(unchecked: kind, level)
    }
}

/// Text that is not a valid intent.
public struct IntentParseError: Error, CustomStringConvertible, Sendable {
    /// The text that failed to parse.
    public let text: String
    /// What was expected and what was found.
    public let reason: String
    /// `intent "…": reason`.
    public var description: String { "intent \"\(text)\": \(reason)" }
}

extension String {
    /// The string without leading and trailing spaces/tabs (no Foundation needed).
    fileprivate func trimmingSpaces() -> String {
        var sub = Substring(self)
        while let c = sub.first, c == " " || c == "\t" || c == "\n" { sub = sub.dropFirst() }
        while let c = sub.last, c == " " || c == "\t" || c == "\n" { sub = sub.dropLast() }
        return String(sub)
    }
}
