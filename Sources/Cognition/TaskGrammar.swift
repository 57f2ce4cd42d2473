/// The instructions a model was trained to follow, as word templates with slots: the
/// controller's start-up check of `context.instruction` (`controller.instructions` in robot.json).
///
/// The model reads any instruction and always proposes an intent — it drives on, equally sure of
/// itself, whether asked "go to the red box" or "dance on the table and sing" (the adversarial
/// suite measured a hold rate of 0.006 for the latter: nothing in its uncertainty reacts). An
/// instruction outside the task family it was trained on is a fact known before the first tick,
/// so it is checked once: when no template matches, every decision is gated with reason
/// `unknown_instruction` until the instruction changes.
///
/// Matching is on words: lower-cased, split on white space, with trailing `.`, `,`, `!`, `?`
/// dropped; a template word `{name}` matches any one word of slot `name`.
public struct TaskGrammar: Sendable, Equatable {
    /// Templates as words (`["go", "to", "the", "{c}", "{k}"]`).
    public var templates: [[String]]
    /// Slot name → accepted words (`"c": ["red", "green", …]`).
    public var slots: [String: [String]]

    /// A grammar from template strings (`"go to the {c} {k}"`) and slot words.
    public init(templates: [String], slots: [String: [String]]) {
        self.templates = templates.map(Self.words)
        self.slots = slots.mapValues { $0.map { $0.lowercased() } }
    }

    /// The words of `text` as matching sees them.
    public static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { w in
            var s = Substring(w)
            while let last = s.last, ".,!?".contains(last) { s = s.dropLast() }
            return s.isEmpty ? nil : String(s)
        }
    }

    /// Slot names used by the templates that `slots` does not define (a config error).
    public var undefinedSlots: [String] {
        var out: [String] = []
        for t in templates {
            for w in t where w.hasPrefix("{") && w.hasSuffix("}") {
                let name = String(w.dropFirst().dropLast())
                if slots[name] == nil && !out.contains(name) { out.append(name) }
            }
        }
        return out
    }

    /// True when some template matches `instruction` word for word.
    public func accepts(_ instruction: String) -> Bool {
        let w = Self.words(instruction)
        return templates.contains { t in
            t.count == w.count && zip(t, w).allSatisfy { pattern, word in
                if pattern.hasPrefix("{") && pattern.hasSuffix("}") {
                    return slots[String(pattern.dropFirst().dropLast())]?.contains(word) ?? false
                }
                return pattern == word
            }
        }
    }
}
