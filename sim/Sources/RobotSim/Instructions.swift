/// Natural-language task instructions drawn from varied templates.
public enum Instructions {
    /// Templates; `{c}` is the colour, `{k}` the kind.
    public static let templates = [
        "go to the {c} {k}",
        "drive to the {c} {k}",
        "find the {c} {k} and stop",
        "navigate to the {c} {k}",
        "head to the {c} {k}",
        "move to the {c} {k}",
        "reach the {c} {k}",
        "go find the {c} {k}",
        "please go to the {c} {k}",
        "the {c} {k} is your goal",
        "approach the {c} {k} and stop there",
        "get close to the {c} {k}",
    ]

    /// An instruction for a target of `colour` and `kind`, wording drawn from `rng`.
    public static func make(colour: String, kind: String, rng: inout SimRNG) -> String {
        let t = templates[rng.int(0...(templates.count - 1))]
        return t.replacingAll("{c}", with: colour).replacingAll("{k}", with: kind)
    }
}

extension String {
    /// The string with every occurrence of `token` replaced (no Foundation needed).
    func replacingAll(_ token: String, with value: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: token) {
            out += rest[..<r.lowerBound]
            out += value
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
