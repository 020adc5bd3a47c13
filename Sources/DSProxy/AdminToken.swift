#if canImport(Glibc)
import Glibc
#endif

/// The shared secret that admin requests must present as `Authorization: Bearer <token>` when
/// ds-lb is started with `--admin-token-file` (the loopback allow-list alone lets any
/// local user resize the pool).
///
/// Thread safety: immutable; any thread.
package struct AdminToken: Sendable, Equatable {
    /// Shortest token accepted: a guessable secret is worse than none because it looks safe.
    package static let minimumLength = 16
    package static let maximumLength = 4096

    let bytes: [UInt8]

    /// `text` with surrounding whitespace (the trailing newline of a file) removed. Throws when
    /// the rest is too short, too long or holds bytes a header value cannot carry.
    package init(_ text: String) throws(AdminTokenError) {
        let trimmed = text.utf8.drop(while: AdminToken.isSpace).reversed().drop(while: AdminToken.isSpace).reversed()
        let bytes = [UInt8](trimmed)
        guard bytes.count >= AdminToken.minimumLength else {
            throw AdminTokenError(
                "admin token is \(bytes.count) characters long; at least \(AdminToken.minimumLength) are required")
        }
        guard bytes.count <= AdminToken.maximumLength else {
            throw AdminTokenError("admin token is longer than \(AdminToken.maximumLength) characters")
        }
        // RFC 6750 §2.1 b64token: the characters a Bearer credential may use.
        guard bytes.allSatisfy(AdminToken.isTokenByte) else {
            throw AdminTokenError("admin token may hold only letters, digits and -._~+/= (RFC 6750 b64token)")
        }
        self.bytes = bytes
    }

    /// Reads the token from the first line of the file at `path`.
    package static func load(path: String) throws(AdminTokenError) -> AdminToken {
        guard let file = fopen(path, "r") else {
            throw AdminTokenError("cannot read admin token file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while data.count <= maximumLength + 2 {
            let n = fread(&chunk, 1, chunk.count, file)
            if n == 0 { break }
            data += chunk[0..<n]
        }
        let firstLine = data.split(separator: UInt8(ascii: "\n"), maxSplits: 1, omittingEmptySubsequences: false).first ?? []
        do {
            return try AdminToken(String(decoding: firstLine, as: UTF8.self))
        } catch {
            throw AdminTokenError("\(path): \(error.message)")
        }
    }

    /// Whether an `Authorization` field value carries this token as a Bearer credential. The
    /// scheme is case-insensitive (RFC 9110 §11.1); the comparison of the credential takes the
    /// same time whatever the position of the first differing byte (no early exit), so response
    /// timing does not reveal how much of a guess was right.
    package func accepts<C: BidirectionalCollection<UInt8>>(authorization value: C) -> Bool {
        var rest = value[...]
        while let first = rest.first, AdminToken.isSpace(first) { rest = rest.dropFirst() }
        let scheme = Array("bearer".utf8)
        guard rest.count > scheme.count else { return false }
        for expected in scheme {
            guard let byte = rest.first, byte | 0x20 == expected else { return false }
            rest = rest.dropFirst()
        }
        guard let separator = rest.first, separator == UInt8(ascii: " ") else { return false }
        while let first = rest.first, AdminToken.isSpace(first) { rest = rest.dropFirst() }
        while let last = rest.last, AdminToken.isSpace(last) { rest = rest.dropLast() }
        return AdminToken.constantTimeEqual(Array(rest), bytes)
    }

    /// Whether a request head (the bytes the parser accepted, up to and including the empty
    /// line) carries exactly one `Authorization` field and it holds this token. Scans the lines
    /// itself so it depends on nothing but the validated bytes; admin requests only, never the
    /// proxied path. Two Authorization fields are refused: which one counts would be a guess.
    package func authorizes(head: UnsafeRawBufferPointer) -> Bool {
        let name = Array("authorization".utf8)
        var found: Slice<UnsafeRawBufferPointer>?
        var count = 0
        var lineStart = 0
        var first = true
        var i = 0
        while i < head.count {
            guard head[i] == UInt8(ascii: "\n") else { i += 1; continue }
            var lineEnd = i
            if lineEnd > lineStart && head[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            defer { lineStart = i + 1; i += 1 }
            if first { first = false; continue }
            let line = head[lineStart..<lineEnd]
            guard line.count > name.count, line[lineStart + name.count] == UInt8(ascii: ":") else { continue }
            var matches = true
            for (offset, expected) in name.enumerated() where line[lineStart + offset] | 0x20 != expected {
                matches = false
                break
            }
            if matches {
                count += 1
                found = head[(lineStart + name.count + 1)..<lineEnd]
            }
        }
        guard count == 1, let found else { return false }
        return accepts(authorization: found)
    }

    /// Compares every byte of the longer input; the length difference is folded into the result
    /// rather than returned early. (Only the length of the expected token could leak, and it is
    /// not secret in any useful sense.)
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt(bitPattern: a.count ^ b.count)
        let n = max(a.count, b.count)
        for i in 0..<n {
            let x = i < a.count ? a[i] : 0
            let y = i < b.count ? b[i] : 0
            difference |= UInt(x ^ y)
        }
        return difference == 0
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n")
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"),
            UInt8(ascii: "/"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }
}

package struct AdminTokenError: Error, Sendable, CustomStringConvertible {
    package let message: String
    init(_ message: String) { self.message = message }
    package var description: String { message }
}
