import DSHTTP1

/// How a proxied exchange ends, decided from facts alone (no I/O, unit-tested without sockets):
/// whether a 101 is accepted, whether the client connection and the replica connection go on
/// after the response.
enum ExchangeEnding {
    /// A 101 (RFC 9110 §15.2.2) is accepted only for an upgrade the client asked for, with no
    /// request body outstanding (its bytes would go into the tunnel as the new protocol's).
    @inline(__always)
    static func acceptsUpgrade(requested: Bool, requestBodyLeft: Bool) -> Bool {
        requested && !requestBodyLeft
    }

    /// Decided with the response head (which says so in its `Connection` field): the client
    /// connection ends after this response if the client asked, if the response runs until the
    /// replica closes, or if the worker drains.
    @inline(__always)
    static func closesClient(clientAsked: Bool, framing: BodyFraming, draining: Bool) -> Bool {
        clientAsked || framing == .untilClose || draining
    }

    /// Once the response is relayed: a replica may answer before reading the whole body, whose
    /// rest would then be taken for the next request, so the client connection ends too.
    @inline(__always)
    static func closesClientAtEnd(decided: Bool, requestBodyLeft: Bool) -> Bool {
        decided || requestBodyLeft
    }

    /// The replica connection goes back to the pool only if the replica keeps it, the response
    /// was delimited, the replica got the whole body, nothing unexpected followed the response,
    /// and the worker is not draining.
    @inline(__always)
    static func replicaReusable(
        keptByReplica: Bool, framing: BodyFraming, requestBodyLeft: Bool, bytesAfterResponse: Bool, draining: Bool
    ) -> Bool {
        keptByReplica && framing != .untilClose && !requestBodyLeft && !bytesAfterResponse && !draining
    }
}
