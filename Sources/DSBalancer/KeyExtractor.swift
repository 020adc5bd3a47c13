/// Where the routing key comes from: a fallback chain such as `query:id,random` (the first
/// source present wins; when every source misses, the last one named decides, see
/// `KeyExtraction`). Parsed once at start-up; applied per request without allocation.
package struct KeyExtractor: Sendable, CustomStringConvertible {
    package enum Source: Sendable, Equatable {
        case query(String)
        case header(String)
        case cookie(String)
        case path
        case clientIP
        /// A fresh random 6-digit request id (100000...999999) per request, hashed as its
        /// decimal text like an `?id=` value: keyless requests spread over the pool the way the
        /// course's clients, which send such ids, spread theirs.
        case random
    }

    package let sources: [Source]

    package struct ParseError: Error, CustomStringConvertible {
        package let description: String
    }

    /// `query:id,random`: a request with an id sticks to its replica, one without spreads (a
    /// key is what makes a request sticky; `client-ip` would pin all of one client's keyless
    /// traffic, e.g. a load test's, to one replica).
    package static let `default` = KeyExtractor(sources: [.query("id"), .random])

    package init(sources: [Source]) {
        self.sources = sources
    }

    /// Parses `query:NAME,header:NAME,cookie:NAME,path,client-ip,random`.
    package init(parsing text: String) throws {
        var sources: [Source] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(inSet: " ")
            let pieces = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let kind = pieces[0].lowercased()
            let name = pieces.count > 1 ? String(pieces[1]) : ""
            guard !item.isEmpty else { throw ParseError(description: "--hash-key: empty key source in '\(text)'") }
            if (kind == "path" || kind == "client-ip" || kind == "random") && pieces.count > 1 {
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
            case "random":
                sources.append(.random)
            default:
                throw ParseError(
                    description:
                        "--hash-key: unknown key source '\(item)' (use query:NAME, header:NAME, cookie:NAME, path, client-ip or random)"
                )
            }
        }
        self.sources = sources
    }

    /// The names of the `header:` sources, lowercased.
    package var headerNames: [String] {
        sources.compactMap { if case .header(let name) = $0 { return name } else { return nil } }
    }

    package var description: String {
        sources.map { source -> String in
            switch source {
            case .query(let n): return "query:\(n)"
            case .header(let n): return "header:\(n)"
            case .cookie(let n): return "cookie:\(n)"
            case .path: return "path"
            case .clientIP: return "client-ip"
            case .random: return "random"
            }
        }.joined(separator: ",")
    }
}

extension Substring {
    /// Trims leading and trailing `character`s.
    fileprivate func trimmingCharacters(inSet character: Character) -> String {
        var s = self
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
