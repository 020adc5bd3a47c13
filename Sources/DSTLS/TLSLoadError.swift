/// Why a certificate or key could not be used: one line naming the file and the reason
/// (missing, unreadable, not PEM, key not matching the certificate, expired).
package struct TLSLoadError: Error, CustomStringConvertible, Equatable {
    package let file: String
    package let reason: String

    package init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    package var description: String { "\(file): \(reason)" }
}
