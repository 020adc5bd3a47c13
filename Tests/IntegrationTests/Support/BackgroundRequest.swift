// A request left in flight while the test does something else (a slow request across a /rm or a
// weight change), answered on its own thread.

import Foundation

final class ResultBox: @unchecked Sendable {
    var response: HTTPResponse?
    var error: Error?
}

extension LoadBalancerUnderTest {
    /// Sends `GET target` on a fresh connection from another thread. The returned closure waits
    /// up to `timeout` seconds for the answer: nil if none came, else the response or the error.
    func getInBackground(_ target: String, timeout: TimeInterval = 20) -> () -> ResultBox? {
        let port = port
        let done = DispatchSemaphore(value: 0)
        let box = Unchecked(ResultBox())
        Thread {
            do {
                let connection = try HTTPConnection(port: port, timeout: timeout)
                box.value.response = try connection.request("GET", target)
                connection.close()
            } catch {
                box.value.error = error
            }
            done.signal()
        }.start()
        // The semaphore orders the thread's writes to `box` before the caller's reads.
        return { done.wait(timeout: .now() + timeout + 5) == .success ? box.value : nil }
    }
}
