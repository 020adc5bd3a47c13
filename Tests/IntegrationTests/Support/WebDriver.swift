// A headless Chromium driven through chromedriver's W3C WebDriver HTTP API (JSON over
// 127.0.0.1), with the tests' own HTTP client: no Selenium, nothing from PyPI. chromedriver is
// started by the test (`launch`), so it and the Chromium it starts are stopped by PID in
// teardown, even when the test fails; `quit()` ends the session first when the test gets there.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

struct WebDriverError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

final class Browser {
    static let chromedriver = "/usr/bin/chromedriver"
    static let chromium = "/usr/bin/chromium"

    let driver: ChildProcess
    let port: UInt16
    private(set) var session: String = ""

    /// Starts chromedriver and a headless Chromium with a fresh profile in a temporary directory,
    /// its window `width`×`height`, keeping every console message (`goog:loggingPrefs`).
    init(test: IntegrationTestCase, width: Int = 1280, height: Int = 800) throws {
        for binary in [Self.chromedriver, Self.chromium] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw WebDriverError("\(binary) is not installed: scripts/install-deps.sh test installs chromium and chromium-driver")
        }
        port = try SocketAddress.freeLoopbackPort()
        driver = try test.launch(Self.chromedriver, ["--port=\(port)", "--allowed-ips=127.0.0.1"], name: "chromedriver")
        try waitUntilReady(timeout: 20)
        let profile = try test.temporaryDirectory()
        let capabilities: [String: Any] = [
            "browserName": "chrome",
            "goog:loggingPrefs": ["browser": "ALL"],
            "goog:chromeOptions": [
                "binary": Self.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                    "--disable-background-networking", "--disable-component-update",
                    "--user-data-dir=\(profile)", "--window-size=\(width),\(height)",
                ],
            ],
        ]
        let created = try command("POST", "/session", ["capabilities": ["alwaysMatch": capabilities]], timeout: 60)
        guard let value = created as? [String: Any], let id = value["sessionId"] as? String else {
            throw WebDriverError("new session: unexpected answer \(String(describing: created))")
        }
        session = id
    }

    /// chromedriver answers `GET /status` with `ready` once it listens.
    private func waitUntilReady(timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status = try? command("GET", "/status") as? [String: Any], status["ready"] as? Bool == true { return }
            if let exit = driver.pollTermination() {
                throw WebDriverError("chromedriver exited (\(exit)): \(driver.outputTail())")
            }
            if Date() > deadline { throw WebDriverError("chromedriver not ready within \(timeout) s: \(driver.outputTail())") }
            usleep(50_000)
        }
    }

    /// One WebDriver command; its `value`. A WebDriver error is thrown with its message.
    @discardableResult
    func command(_ method: String, _ path: String, _ body: [String: Any]? = nil, timeout: TimeInterval = 30) throws -> Any? {
        let connection = try HTTPConnection(port: port, timeout: timeout)
        defer { connection.close() }
        let bytes = body.map(JSON.bytes) ?? (method == "POST" ? Array("{}".utf8) : nil)
        let response = try connection.request(
            method, path, headers: [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close")], body: bytes)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body), options: [.fragmentsAllowed])) as? [String: Any]
        let value = json?["value"]
        if response.status != 200 {
            let error = value as? [String: Any]
            throw WebDriverError(
                "\(method) \(path): \(response.status) \(error?["error"] ?? "") \(error?["message"] ?? response.bodyString)")
        }
        return value is NSNull ? nil : value
    }

    private var sessionPath: String { "/session/\(session)" }

    func open(_ url: String) throws {
        try command("POST", "\(sessionPath)/url", ["url": url], timeout: 60)
    }

    /// Runs `script` (a function body) in the page; what it returns.
    @discardableResult
    func execute(_ script: String, _ arguments: [Any] = []) throws -> Any? {
        try command("POST", "\(sessionPath)/execute/sync", ["script": script, "args": arguments])
    }

    /// The element `css` selects (WebDriver's element reference).
    func element(_ css: String) throws -> [String: Any] {
        guard
            let found = try command("POST", "\(sessionPath)/element", ["using": "css selector", "value": css]) as? [String: Any]
        else { throw WebDriverError("no element \(css)") }
        return found
    }

    private func elementID(_ element: [String: Any]) -> String {
        element["element-6066-11e4-a52e-4f735466cecf"] as? String ?? ""
    }

    func click(_ css: String) throws {
        try command("POST", "\(sessionPath)/element/\(elementID(try element(css)))/click")
    }

    func type(_ text: String, into css: String) throws {
        let id = elementID(try element(css))
        try command("POST", "\(sessionPath)/element/\(id)/clear")
        try command("POST", "\(sessionPath)/element/\(id)/value", ["text": text])
    }

    /// Keys sent to whatever has the focus (W3C actions), e.g. "\u{E004}" for Tab.
    func press(_ keys: String) throws {
        let actions = keys.unicodeScalars.flatMap { key -> [[String: Any]] in
            [["type": "keyDown", "value": String(key)], ["type": "keyUp", "value": String(key)]]
        }
        try command("POST", "\(sessionPath)/actions", ["actions": [["type": "key", "id": "keyboard", "actions": actions]]])
        try command("DELETE", "\(sessionPath)/actions")
    }

    /// A PNG of the viewport.
    func screenshot() throws -> Data {
        guard let base64 = try command("GET", "\(sessionPath)/screenshot") as? String, let png = Data(base64Encoded: base64)
        else {
            throw WebDriverError("screenshot: not base64")
        }
        return png
    }

    func setWindow(width: Int, height: Int) throws {
        try command("POST", "\(sessionPath)/window/rect", ["width": width, "height": height])
    }

    /// The console messages since the last call (chromedriver's log endpoint): level and text.
    func consoleMessages() throws -> [(level: String, message: String)] {
        let entries = try command("POST", "\(sessionPath)/se/log", ["type": "browser"]) as? [[String: Any]] ?? []
        return entries.map { ($0["level"] as? String ?? "", $0["message"] as? String ?? "") }
    }

    /// Polls `condition` (a script returning true when it holds) until `timeout`; the last value
    /// of `describe` goes into the failure.
    func waitFor(
        _ what: String, timeout: TimeInterval, _ condition: String, _ arguments: [Any] = [], describe: String? = nil
    ) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try execute(condition, arguments) as? Bool == true { return }
            if Date() > deadline {
                let state = try describe.map { try execute($0, arguments) } ?? nil
                throw WebDriverError("\(what): not within \(timeout) s; page: \(String(describing: state))")
            }
            usleep(50_000)
        }
    }

    /// Ends the session (Chromium exits); chromedriver itself is stopped by the test's teardown.
    func quit() {
        guard !session.isEmpty else { return }
        _ = try? command("DELETE", sessionPath)
        session = ""
    }
}
