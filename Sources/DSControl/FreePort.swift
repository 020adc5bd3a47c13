import DSSystem

/// A port for a new replica on `host`, from the kernel (bind to port 0), that no replica the
/// driver runs already has.
///
/// The kernel only promises the port was free while the probe socket was bound; once it is
/// closed, the next probe may get the same port back. A replica started from the first probe
/// may not have bound it yet, so two launches close together could be given one port (the
/// second replica then fails to bind, and the pool would hold two replicas at one address).
/// Skipping the ports of replicas this driver runs closes that window for our own launches;
/// another process taking the port first still makes the child exit, which the supervisor
/// reports and restarts.
package func freePort(on host: String, avoiding taken: Set<UInt16>) throws -> UInt16 {
    let any = try SocketAddress.parse(host.contains(":") ? "[\(host)]:0" : "\(host):0")
    for _ in 0..<64 {
        let fd = FileDescriptor(adopting: try Socket.listen(on: any, backlog: 1))
        let port = try Socket.localAddress(fd.rawValue).port
        if !taken.contains(port) { return port }
    }
    throw DriverError("no free port on \(host) outside the \(taken.count) our replicas hold")
}
