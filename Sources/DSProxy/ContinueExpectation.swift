/// `Expect: 100-continue` for one proxied request (RFC 9110 §10.1.1): ds-lb answers it itself,
/// once the head is on its way to a replica and the body is wanted (whatever refuses the request
/// before that point answers without reading the body). The expectation is still forwarded; a
/// 100 from the replica is then dropped, and no interim response goes to an HTTP/1.0 client
/// (§15.2). A plain value: the exchange writes the bytes.
struct ContinueExpectation {
    /// Our 100 Continue went to the client.
    private(set) var sent = false

    mutating func reset() {
        sent = false
    }

    /// The head went to the replica: whether to send our 100 Continue now.
    mutating func headSent(expectsContinue: Bool, clientHTTP11: Bool, bodyPending: Bool) -> Bool {
        guard expectsContinue && clientHTTP11 && bodyPending && !sent else { return false }
        sent = true
        return true
    }

    /// Whether an interim (1xx) response with `status` from the replica goes on to the client.
    func relaysInterim(status: Int, clientHTTP11: Bool) -> Bool {
        clientHTTP11 && !(status == 100 && sent)
    }
}
