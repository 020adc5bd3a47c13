import DSHTTP1
import DSHashing

/// The body of `POST /add`, `DELETE /rm` and `PATCH /weight`: `{"n": 2, "hostnames": ["S5",
/// "S4"], "weight": 3}`, every key optional here (which command takes which is the planner's
/// call). Parsing is strict: a key given twice, any other key, `null`, and the wrong type
/// (`"n": "2"`, `"n": true`, `"n": 1.5`) are errors, so a body means one thing only.
struct ScaleCommand: Equatable {
    var n: Int?
    var hostnames: [String]?
    /// Its range is checked by `PoolReconciler`, which also knows the pool's total.
    var weight: Int?

    init(n: Int? = nil, hostnames: [String]? = nil, weight: Int? = nil) {
        self.n = n
        self.hostnames = hostnames
        self.weight = weight
    }

    struct Invalid: Error {
        let message: String
    }

    private static let shape = "<Error> Request body must be a JSON object like {\"n\": 1, \"hostnames\": [\"S1\"]}"

    /// Whether `body` says nothing: empty, or JSON white space only.
    static func isBlank(_ body: [UInt8]) -> Bool {
        body.allSatisfy { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }
    }

    /// Parses a request body; a blank body means "no parameters".
    static func parse(_ body: [UInt8]) throws(Invalid) -> ScaleCommand {
        if isBlank(body) { return ScaleCommand() }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch {
            if case .duplicateKey(let key, _) = error {
                throw Invalid(message: "<Error> Key '\(quoted(key))' is given more than once")
            }
            throw Invalid(message: "<Error> Request body is not valid JSON")
        }
        guard case .object(let pairs) = value else { throw Invalid(message: shape) }
        var command = ScaleCommand()
        for (key, item) in pairs {
            switch key {
            case "n":
                guard let n = integer(item) else { throw Invalid(message: "<Error> 'n' must be a positive integer") }
                command.n = n
            case "weight":
                guard let weight = integer(item) else {
                    throw Invalid(message: "<Error> 'weight' must be an integer from 0 to \(HashMember.maxWeight)")
                }
                command.weight = weight
            case "hostnames":
                guard case .array(let items) = item else {
                    throw Invalid(message: "<Error> 'hostnames' must be a list of strings")
                }
                command.hostnames = try items.map { item throws(Invalid) in
                    guard case .string(let name) = item else {
                        throw Invalid(message: "<Error> 'hostnames' must be a list of strings")
                    }
                    return name
                }
            default:
                throw Invalid(message: "<Error> Unknown key '\(quoted(key))': the body takes only 'n', 'hostnames' and 'weight'")
            }
        }
        return command
    }

    /// A whole number, also written with a zero fraction (`2.0`); nil for any other value. The
    /// range is the planner's to check.
    private static func integer(_ item: JSONValue) -> Int? {
        switch item {
        case .int(let value): return value
        case .double(let value) where value == value.rounded() && abs(value) < 1e15: return Int(value)
        default: return nil
        }
    }

    /// Echoes a key back without letting a huge one fill the answer.
    private static func quoted(_ key: String) -> String {
        key.count <= 40 ? key : String(key.prefix(40)) + "..."
    }
}

/// The rules for replica names, one place for every way a name enters the pool (`/add`,
/// `state.json`). A name is also a container name and a host name, so it follows
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 63 characters, and two names that differ only in case
/// are the same name.
enum ReplicaName {
    static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else { return false }
        func alnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == 95 || $0 == 46 || $0 == 45 }
    }

    /// What two names are compared by.
    static func key(_ name: String) -> String { name.lowercased() }

    static func same(_ a: String, _ b: String) -> Bool { key(a) == key(b) }

    enum Problem: Equatable {
        /// `names[index]` is not a valid name.
        case invalid(index: Int)
        /// `names[index]` is the same name as `names[first]`.
        case repeated(index: Int, first: Int)
        /// `names[index]` is the same name as `existing`, already in the pool.
        case taken(index: Int, existing: String)

        var index: Int {
            switch self {
            case .invalid(let index), .repeated(let index, _), .taken(let index, _): return index
            }
        }

        static let rule = "use letters, digits, '_', '.', '-' (starting with a letter or digit), at most 63 characters"
    }

    /// The first problem with adding `names` to a pool that holds `existing`, or nil.
    static func check(_ names: [String], existing: [String]) -> Problem? {
        let inPool = Dictionary(existing.map { (key($0), $0) }, uniquingKeysWith: { first, _ in first })
        var seen: [String: Int] = [:]
        for (index, name) in names.enumerated() {
            guard isValid(name) else { return .invalid(index: index) }
            if let first = seen[key(name)] { return .repeated(index: index, first: first) }
            seen[key(name)] = index
            if let existing = inPool[key(name)] { return .taken(index: index, existing: existing) }
        }
        return nil
    }
}
