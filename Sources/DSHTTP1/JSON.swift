/// A small JSON writer for the bodies ds-lb and ds-server produce. Keys keep the order given, so
/// answers read like the classic API's (`{"message": ..., "status": ...}`).
package indirect enum JSONValue: Sendable, Equatable {
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    package static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        lhs.serialized == rhs.serialized
    }

    package var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .string(let s): JSON.writeString(s, to: &out)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += ", " }
                item.write(to: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (k, pair) in pairs.enumerated() {
                if k > 0 { out += ", " }
                JSON.writeString(pair.0, to: &out)
                out += ": "
                pair.1.write(to: &out)
            }
            out += "}"
        }
    }
}

package enum JSON {
    /// Serialises an object literal in the order written.
    package static func object(_ pairs: KeyValuePairs<String, JSONValue>) -> String {
        JSONValue.object(pairs.map { ($0.key, $0.value) }).serialized
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// Why `JSONValue.parse` refused a text. `offset` is the byte where the problem was seen.
package enum JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    case syntax(offset: Int)
    case duplicateKey(String, offset: Int)
    case tooDeep(offset: Int)

    package var description: String {
        switch self {
        case .syntax(let offset): return "not valid JSON at byte \(offset)"
        case .duplicateKey(let key, let offset): return "key \"\(key)\" appears twice in one object (byte \(offset))"
        case .tooDeep(let offset): return "nested more than \(JSONValue.maxParseDepth) levels at byte \(offset)"
        }
    }
}

extension JSONValue {
    static let maxParseDepth = 64

    /// Strict RFC 8259 parsing, for input that decides what ds-lb does (admin bodies, the state
    /// file). Foundation's decoders keep the last of two equal keys, so `{"n":1,"n":2}` would
    /// mean whatever the sender's or a proxy's parser did not; here it is an error. Integers
    /// that fit an `Int` are `.int`, every other number `.double`; strings must be valid UTF-8.
    package static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.index == bytes.count else { throw .syntax(offset: parser.index) }
        return value
    }
}

private struct JSONParser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(JSONParseError) {
        guard current == byte else { throw .syntax(offset: index) }
        index += 1
    }

    private mutating func literal(_ word: String, _ value: JSONValue) throws(JSONParseError) -> JSONValue {
        for byte in word.utf8 { try expect(byte) }
        return value
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < JSONValue.maxParseDepth else { throw .tooDeep(offset: index) }
        guard let byte = current else { throw .syntax(offset: index) }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw .syntax(offset: index)
        }
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var pairs: [(String, JSONValue)] = []
        var keys = Set<String>()
        skipSpace()
        if current == UInt8(ascii: "}") { index += 1; return .object(pairs) }
        while true {
            skipSpace()
            let keyOffset = index
            guard current == UInt8(ascii: "\"") else { throw .syntax(offset: index) }
            let key = try string()
            guard keys.insert(key).inserted else { throw .duplicateKey(key, offset: keyOffset) }
            skipSpace()
            try expect(UInt8(ascii: ":"))
            skipSpace()
            pairs.append((key, try value(depth: depth + 1)))
            skipSpace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "}"))
            return .object(pairs)
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipSpace()
        if current == UInt8(ascii: "]") { index += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "]"))
            return .array(items)
        }
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = current else { throw .syntax(offset: index) }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .syntax(offset: index)
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    private mutating func string() throws(JSONParseError) -> String {
        let start = index
        index += 1
        var raw: [UInt8] = []
        while true {
            guard let byte = current else { throw .syntax(offset: index) }
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                // Escapes produce valid UTF-8 themselves; this catches invalid raw bytes.
                guard let text = String(validating: raw, as: UTF8.self) else { throw .syntax(offset: start) }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard let escape = current else { throw .syntax(offset: index) }
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): raw.append(escape)
                case UInt8(ascii: "b"): raw.append(0x08)
                case UInt8(ascii: "f"): raw.append(0x0C)
                case UInt8(ascii: "n"): raw.append(0x0A)
                case UInt8(ascii: "r"): raw.append(0x0D)
                case UInt8(ascii: "t"): raw.append(0x09)
                case UInt8(ascii: "u"):
                    let at = index - 2
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        // A high surrogate must be followed by an escaped low one.
                        guard current == UInt8(ascii: "\\") else { throw .syntax(offset: at) }
                        index += 1
                        guard current == UInt8(ascii: "u") else { throw .syntax(offset: at) }
                        index += 1
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw .syntax(offset: at) }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw .syntax(offset: at) }
                    raw.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw .syntax(offset: index - 1)
                }
            case 0..<0x20:
                throw .syntax(offset: index)
            default:
                raw.append(byte)
                index += 1
            }
        }
    }

    private mutating func digits() -> Int {
        let start = index
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
        return index - start
    }

    private mutating func number() throws(JSONParseError) -> JSONValue {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            guard digits() > 0 else { throw .syntax(offset: index) }
        }
        var integral = true
        if current == UInt8(ascii: ".") {
            index += 1
            integral = false
            guard digits() > 0 else { throw .syntax(offset: index) }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            integral = false
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard digits() > 0 else { throw .syntax(offset: index) }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let value = Int(text) { return .int(value) }
        guard let value = Double(text) else { throw .syntax(offset: start) }
        return .double(value)
    }
}
