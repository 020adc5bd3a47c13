import COpenSSL
import DSSystem

/// The keys session tickets are sealed with, shared by every context in the process (a ticket
/// issued before a reload still resumes after it) and rotated: the newest key seals new
/// tickets, the older ones still open tickets for `rotation × (count - 1)`, after which a client
/// gets a full handshake. A resumed session sealed with an older key gets a new ticket.
package final class TicketKeys: Sendable {
    package struct Key: Sendable, Equatable {
        package let name: [UInt8]
        package let aes: [UInt8]
        package let hmac: [UInt8]
    }

    /// How long a key seals new tickets.
    package let rotation: UInt64
    /// Keys kept: the sealing one and the ones before it that still open tickets.
    package let count: Int
    private let state: Locked<(keys: [Key], rotatedAt: UInt64)>

    package init(rotationNanoseconds: UInt64 = 3_600_000_000_000, count: Int = 3, now: UInt64 = monotonicNanoseconds()) {
        rotation = rotationNanoseconds
        self.count = max(1, count)
        state = Locked(([Self.makeKey()], now))
    }

    /// The process's keys, used by every `TLSServerContext`.
    package static let shared = TicketKeys()

    /// The key that seals new tickets now (rotating first when it is due).
    package func sealingKey(now: UInt64 = monotonicNanoseconds()) -> Key {
        state.withLock { state in
            rotateIfDue(&state, now: now)
            return state.keys[0]
        }
    }

    /// The key named `name`, and whether it is not the sealing one (the ticket is renewed).
    package func openingKey(named name: UnsafeRawBufferPointer, now: UInt64 = monotonicNanoseconds()) -> (Key, renew: Bool)? {
        state.withLock { state in
            rotateIfDue(&state, now: now)
            guard let index = state.keys.firstIndex(where: { $0.name.elementsEqual(name) }) else { return nil }
            return (state.keys[index], index > 0)
        }
    }

    private func rotateIfDue(_ state: inout (keys: [Key], rotatedAt: UInt64), now: UInt64) {
        // Several periods may have passed (an idle ds-lb): each one retires a key.
        while now &- state.rotatedAt >= rotation && now >= state.rotatedAt {
            state.keys.insert(Self.makeKey(), at: 0)
            if state.keys.count > count { state.keys.removeLast(state.keys.count - count) }
            state.rotatedAt += rotation
        }
    }

    private static func makeKey() -> Key {
        Key(name: randomBytes(16), aes: randomBytes(32), hmac: randomBytes(32))
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        // RAND_bytes fails only when the system has no entropy source at all: there is no way
        // to seal a ticket safely then.
        precondition(RAND_bytes(&bytes, Int32(count)) == 1, "RAND_bytes failed")
        return bytes
    }
}

/// OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)), against the shared
/// keys. Safety: OpenSSL hands `keyName` as 16 writable bytes and `iv` as EVP_MAX_IV_LENGTH
/// writable bytes for the duration of the call; the key arrays are copied out of the lock and
/// live until the call returns.
let ticketKeyCallback:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt8>?, OpaquePointer?, OpaquePointer?, Int32
    ) -> Int32 = { _, keyName, iv, cipher, mac, encrypt in
        guard let keyName, let iv, let cipher, let mac else { return -1 }
        if encrypt == 1 {
            let key = TicketKeys.shared.sealingKey()
            key.name.withUnsafeBufferPointer { keyName.update(from: $0.baseAddress!, count: 16) }
            return ds_ticket_keys(cipher, mac, key.aes, key.hmac, iv, 1) == 1 ? 1 : -1
        }
        guard let (key, renew) = TicketKeys.shared.openingKey(named: UnsafeRawBufferPointer(start: keyName, count: 16)) else {
            return 0 // unknown or retired key: a full handshake
        }
        guard ds_ticket_keys(cipher, mac, key.aes, key.hmac, iv, 0) == 1 else { return -1 }
        return renew ? 2 : 1
    }
