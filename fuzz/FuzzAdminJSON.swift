// libFuzzer target: the admin body decoding (`ScaleCommand.parse`, DSControl/AdminCommand.swift,
// compiled into this binary). Properties: no crash; every refusal is the typed
// `Invalid` error with a message (what the admin API answers with 400); and an accepted
// command encoded again as JSON decodes to the same command.

import Foundation

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    let body = Array(bytes)
    let command: ScaleCommand
    do {
        command = try ScaleCommand.parse(body)
    } catch {
        // `parse` throws only `ScaleCommand.Invalid` (typed throws), so only its message is checked.
        require(error.message.hasPrefix("<Error> "), "refusal without a message: \(error.message)")
        return
    }
    var object: [String: Any] = [:]
    if let n = command.n { object["n"] = n }
    if let names = command.hostnames { object["hostnames"] = names }
    if let weight = command.weight { object["weight"] = weight }
    guard let encoded = try? JSONSerialization.data(withJSONObject: object) else {
        violated("an accepted command cannot be encoded again: \(command)")
    }
    do {
        let again = try ScaleCommand.parse(Array(encoded))
        require(again == command, "round trip changed the command: \(command) → \(again)")
    } catch {
        violated("an accepted command, encoded again, is refused: \(command) \(error)")
    }
}
