import Foundation

/// The body of `POST /add` and `DELETE /rm`: `{"n": 2, "hostnames": ["S5", "S4"]}`, both keys
/// optional. Decoding is strict about types: `"n": "2"`, `"n": true` or `"n": 1.5` are errors.
struct ScaleCommand: Decodable, Equatable {
    var n: Int?
    var hostnames: [String]?

    init(n: Int? = nil, hostnames: [String]? = nil) {
        self.n = n
        self.hostnames = hostnames
    }

    private enum CodingKeys: String, CodingKey { case n, hostnames }

    /// `n` is read as a JSON number first: Foundation reports a fraction or an out-of-range
    /// integer as "not valid JSON", which would not tell the user what is wrong.
    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        hostnames = try container.decodeIfPresent([String].self, forKey: .hostnames)
        if let value = try container.decodeIfPresent(Double.self, forKey: .n) {
            guard value == value.rounded(), abs(value) < 1e15 else {
                throw Invalid(message: "<Error> 'n' must be a positive integer")
            }
            n = Int(value)
        } else {
            n = nil
        }
    }

    struct Invalid: Error {
        let message: String
    }

    /// Parses a request body; an empty body means "no parameters", and so does `null` for a key.
    static func parse(_ body: [UInt8]) throws -> ScaleCommand {
        if body.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) { return ScaleCommand() }
        do {
            return try JSONDecoder().decode(ScaleCommand.self, from: Data(body))
        } catch let error as Invalid {
            throw error
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
                DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            switch context.codingPath.first?.stringValue {
            case "n": throw Invalid(message: "<Error> 'n' must be a positive integer")
            case "hostnames": throw Invalid(message: "<Error> 'hostnames' must be a list of strings")
            default: throw Invalid(message: "<Error> Request body must be a JSON object like {\"n\": 1, \"hostnames\": [\"S1\"]}")
            }
        } catch {
            throw Invalid(message: "<Error> Request body is not valid JSON")
        }
    }

    /// A replica name must also be a valid container name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, ≤ 63 chars.
    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }
}
