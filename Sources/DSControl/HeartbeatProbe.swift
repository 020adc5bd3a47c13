#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem

/// One `GET /heartbeat` to one replica, non-blocking on the control loop, with one deadline for
/// connect + response (a hung replica costs the supervisor nothing but a timer). Control loop only.
final class HeartbeatProbe: EventHandler {
    private let backend: Backend
    private unowned let loop: EventLoop
    private var fd: Int32 = -1
    private var connected = false
    private var requestSent = false
    private let input = ByteBuffer(capacity: 1024)
    private var timer: TimerID?
    private var completion: ((CheckResult, UInt64) -> Void)?
    private let started = monotonicNanoseconds()
    private static let parser = HeadParser(limits: HTTPLimits(maxHeadBytes: 16 * 1024, maxHeaderCount: 100))

    /// Starts the check; `completion` runs exactly once, on the loop, with the result and the
    /// latency in nanoseconds.
    init(backend: Backend, loop: EventLoop, timeoutNanoseconds: UInt64, completion: @escaping (CheckResult, UInt64) -> Void) {
        self.backend = backend
        self.loop = loop
        self.completion = completion
        timer = loop.schedule(afterNanoseconds: timeoutNanoseconds) { [weak self] in
            guard let self else { return }
            self.timer = nil
            self.finish(self.connected ? .l7Timeout : .l4Timeout)
        }
        do {
            let address = try SocketAddress.parse(backend.address)
            let (fd, connected) = try Socket.connect(to: address)
            self.fd = fd
            self.connected = connected
            try loop.register(fd, handler: self)
        } catch let error as SyscallError {
            // Deliver on the next turn, never from inside init: the caller expects a later callback.
            let reason = String(cString: strerror(error.errno))
            // Out of descriptors here (socket() failed): the replica is not at fault.
            let result: CheckResult = error.isLocalResourceExhaustion ? .skipped(reason) : .l4Connection(reason)
            loop.schedule(afterNanoseconds: 0) { [weak self] in self?.finish(result) }
        } catch {
            loop.schedule(afterNanoseconds: 0) { [weak self] in self?.finish(.l4Connection("\(error)")) }
        }
    }

    func handle(_ events: IOEvents) {
        guard completion != nil else { return }
        if !connected {
            guard events.contains(.writable) || events.contains(.error) || events.contains(.hangup) else { return }
            let err = Socket.connectResult(fd)
            if err != 0 { return finish(.l4Connection(String(cString: strerror(err)))) }
            connected = true
        }
        if !requestSent {
            let request = "GET /heartbeat HTTP/1.1\r\nHost: \(backend.name)\r\nUser-Agent: ds-lb-health\r\nConnection: close\r\n\r\n"
            var text = request
            let result = text.withUTF8 { try? Socket.write(fd, UnsafeRawBufferPointer($0)) }
            guard case .done(let n)? = result else {
                if case .wouldBlock? = result { return }
                return finish(.l4Connection("write failed"))
            }
            // A request this small always fits an empty socket buffer; anything less is a broken peer.
            guard n == request.utf8.count else { return finish(.l7Response("short write")) }
            requestSent = true
        }
        while completion != nil {
            do {
                switch try input.read(from: fd, chunk: 1024) {
                case .wouldBlock:
                    return
                case .done(0):
                    return finish(parse(eof: true))
                case .done:
                    let outcome = parse(eof: false)
                    if outcome != .l7Response("incomplete") { return finish(outcome) }
                }
            } catch let error as SyscallError {
                return finish(.l7Response(String(cString: strerror(error.errno))))
            } catch {
                return finish(.l7Response("\(error)"))
            }
        }
    }

    private func parse(eof: Bool) -> CheckResult {
        switch Self.parser.parseResponse(input.readable) {
        case .complete(let head):
            return (200..<300).contains(head.status) ? .l7OK : .l7Status(head.status)
        case .failed(let error):
            return .l7Response(error.message)
        case .incomplete:
            return eof ? .l7Response("connection closed before a response") : .l7Response("incomplete")
        }
    }

    private func finish(_ result: CheckResult) {
        guard let completion else { return }
        self.completion = nil
        if let timer { loop.cancel(timer) }
        timer = nil
        if fd >= 0 {
            loop.unregister(fd)
            Socket.close(fd)
            fd = -1
        }
        completion(result, monotonicNanoseconds() - started)
    }
}
