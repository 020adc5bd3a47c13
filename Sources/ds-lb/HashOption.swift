import ArgumentParser
import DSHashing

/// `--hash` as `serve` and `ring` both take it: the same help and the same error, from
/// `HashAlgorithm`'s names.
extension HashAlgorithm {
    static var optionHelp: ArgumentHelp { ArgumentHelp("Consistent-hash algorithm: \(names).") }

    /// The algorithm `--hash` names, or the one-line error that lists the valid names.
    init(option name: String) throws {
        guard let algorithm = HashAlgorithm(rawValue: name) else {
            throw ValidationError("--hash: unknown algorithm '\(name)' (use \(HashAlgorithm.names))")
        }
        self = algorithm
    }
}
