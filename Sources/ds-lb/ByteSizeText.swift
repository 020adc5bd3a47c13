import ArgumentParser

/// Sizes on the command line: a byte count, or one with a K, M or G suffix (powers of 1024,
/// optionally followed by `iB` or `B`: 64K, 64KiB, 10M, 1G).
enum ByteSizeText {
    static func bytes(_ text: String, name: String) throws -> UInt64 {
        var digits = Substring(text)
        var unit: UInt64 = 1
        let units: [Character: UInt64] = ["K": 1 << 10, "k": 1 << 10, "M": 1 << 20, "m": 1 << 20, "G": 1 << 30, "g": 1 << 30]
        if digits.hasSuffix("iB") || digits.hasSuffix("B") {
            let rest = digits.hasSuffix("iB") ? digits.dropLast(2) : digits.dropLast()
            if let last = rest.last, units[last] != nil { digits = rest }
        }
        if let last = digits.last, let multiplier = units[last] {
            unit = multiplier
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let count = UInt64(digits) else {
            throw ValidationError("\(name): '\(text)' is not a size (a byte count, or with a K, M or G suffix: 64K, 10M)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
        guard !overflow else { throw ValidationError("\(name): '\(text)' is too large") }
        return bytes
    }
}
