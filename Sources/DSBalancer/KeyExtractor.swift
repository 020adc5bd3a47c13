/// Where the routing key comes from: a fallback chain such as `query:id,client-ip` (the first
/// source present wins). Parsed once at start-up; applied per request without allocation when
/// the key is in the query string.
public struct KeyExtractor: Sendable, CustomStringConvertible {
    public enum Source: Sendable, Equatable {
        case query(String)
        case header(String)
        case cookie(String)
        case path
        case clientIP
    }

    public let sources: [Source]

    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    public static let `default` = KeyExtractor(sources: [.query("id"), .clientIP])

    public init(sources: [Source]) {
        self.sources = sources
    }

    /// Parses `query:NAME,header:NAME,cookie:NAME,path,client-ip`.
    public init(parsing text: String) throws {
        var sources: [Source] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(inSet: " ")
            let pieces = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let kind = pieces[0].lowercased()
            let name = pieces.count > 1 ? String(pieces[1]) : ""
            guard !item.isEmpty else { throw ParseError(description: "--hash-key: empty key source in '\(text)'") }
            if (kind == "path" || kind == "client-ip") && pieces.count > 1 {
                throw ParseError(description: "--hash-key: '\(item)' takes no name (use \(kind))")
            }
            switch kind {
            case "query", "header", "cookie":
                guard !name.isEmpty else { throw ParseError(description: "--hash-key: '\(item)' needs a name, e.g. \(kind):id") }
                sources.append(kind == "query" ? .query(name) : kind == "header" ? .header(name.lowercased()) : .cookie(name))
            case "path":
                sources.append(.path)
            case "client-ip":
                sources.append(.clientIP)
            default:
                throw ParseError(description: "--hash-key: unknown key source '\(item)' (use query:NAME, header:NAME, cookie:NAME, path or client-ip)")
            }
        }
        self.sources = sources
    }

    public var description: String {
        sources.map { source -> String in
            switch source {
            case .query(let n): return "query:\(n)"
            case .header(let n): return "header:\(n)"
            case .cookie(let n): return "cookie:\(n)"
            case .path: return "path"
            case .clientIP: return "client-ip"
            }
        }.joined(separator: ",")
    }
}

extension Substring {
    /// Trims leading and trailing `character`s.
    public func trimmingCharacters(inSet character: Character) -> String {
        var s = self
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
