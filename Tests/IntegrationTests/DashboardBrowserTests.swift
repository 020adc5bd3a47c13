// GET /dashboard in a real browser (headless Chromium through chromedriver): the page follows
// a replica's failure and recovery, adds and removes replicas through the admin API, shows the
// key space, asks for the admin token, and logs nothing to the console.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class DashboardBrowserTests: IntegrationTestCase {
    /// Short, so a failure and its repair happen within a few seconds.
    let heartbeat: TimeInterval = 0.5

    private func startBrowser() throws -> Browser {
        let browser = try Browser(test: self)
        addTeardownBlock { browser.quit() }
        return browser
    }

    /// Waits until the page is live and shows `count` replicas, all UP, each with its key share.
    private func waitForPool(_ browser: Browser, count: Int, timeout: TimeInterval = 20) throws {
        try browser.waitFor(
            "\(count) replicas UP with their key shares, stream live", timeout: timeout,
            """
            const rows = [...document.querySelectorAll('#replicas tbody tr')];
            return window.dsDashboard.live && rows.length === arguments[0]
                && rows.every((r) => r.dataset.state === 'UP' && r.dataset.share !== '');
            """, [count], describe: Self.describePage)
    }

    static let describePage = """
        return [...document.querySelectorAll('#replicas tbody tr')].map((r) => r.dataset.replica + ' ' + r.dataset.state
            + ' ' + r.dataset.share).join('; ') + ' | live ' + window.dsDashboard.live
            + ' | message ' + document.getElementById('action-message').textContent
        """

    /// The page's time (ms), to compare with the times of the states it drew.
    private func pageNow(_ browser: Browser) throws -> Double {
        try browser.execute("return Date.now();") as? Double ?? 0
    }

    private func replicaPID(_ lb: LoadBalancerUnderTest, _ name: String) throws -> pid_t {
        let status = try lb.request("GET", "/status")
        let replicas = (status.jsonObject?["message"] as? [String: Any])?["replicas"] as? [[String: Any]] ?? []
        guard let pid = replicas.first(where: { $0["name"] as? String == name })?["pid"] as? Int else {
            throw WebDriverError("no pid for \(name) in /status: \(status)")
        }
        return pid_t(pid)
    }

    private func assertNoConsoleErrors(
        _ browser: Browser, _ what: String, file: StaticString = #filePath, line: UInt = #line
    )
        throws
    {
        let errors = try browser.consoleMessages().filter { $0.level == "SEVERE" || $0.level == "WARNING" }
        XCTAssertEqual(errors.map(\.message), [], "\(what): console errors", file: file, line: line)
    }

    func testThePageFollowsAFailureAndScalesThePool() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3", "--heartbeat-interval", "\(Int(heartbeat * 1000))ms",
        ])
        let browser = try startBrowser()
        try browser.open("http://127.0.0.1:\(lb.port)/dashboard")
        try waitForPool(browser, count: 3)
        _ = try routeIDs(Array(1...60), through: lb)

        // Readable at 1280×800 and at phone width: nothing wider than the window.
        for (width, height) in [(1280, 800), (390, 844)] {
            try browser.setWindow(width: width, height: height)
            try browser.waitFor(
                "no horizontal overflow at \(width)×\(height)", timeout: 5,
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                describe: "return document.documentElement.scrollWidth + ' > ' + window.innerWidth;")
        }
        try browser.setWindow(width: 1280, height: 800)

        // A replica's process dies: its row turns DOWN, then UP again once restarted, each
        // within the heartbeat interval plus 2 s.
        let pid = try replicaPID(lb, "server-2")
        let killedAt = try pageNow(browser)
        XCTAssertEqual(Glibc.kill(pid, SIGKILL), 0)
        let limit = heartbeat + 2
        try browser.waitFor(
            "server-2 drawn DOWN after its kill", timeout: limit,
            "return window.dsDashboard.transitions.some((t) => t.name === 'server-2' && t.state === 'DOWN' && t.time >= arguments[0]);",
            [killedAt], describe: Self.describePage)
        if let path = ProcessInfo.processInfo.environment["DSLB_DASHBOARD_SCREENSHOT"] {
            try browser.screenshot().write(to: URL(fileURLWithPath: path))
        }
        let downAt =
            try browser.execute(
                "return window.dsDashboard.transitions.find((t) => t.name === 'server-2' && t.state === 'DOWN' && t.time >= arguments[0]).time;",
                [killedAt]) as? Double ?? 0
        try browser.waitFor(
            "server-2 drawn UP again after DOWN", timeout: limit,
            "return window.dsDashboard.transitions.some((t) => t.name === 'server-2' && t.state === 'UP' && t.time > arguments[0]);",
            [downAt], describe: Self.describePage)
        let upAt =
            try browser.execute(
                "return window.dsDashboard.transitions.find((t) => t.name === 'server-2' && t.state === 'UP' && t.time > arguments[0]).time;",
                [downAt]) as? Double ?? 0
        print("dashboard: server-2 killed → DOWN drawn \(Int(downAt - killedAt)) ms, → UP drawn \(Int(upAt - downAt)) ms later")
        XCTAssertNotEqual(try replicaPID(lb, "server-2"), pid, "server-2 runs a new process")
        // The timeline has the failure and the recovery with its duration.
        try browser.waitFor(
            "the exit and the restart of server-2 in the timeline", timeout: 5,
            """
            const items = [...document.querySelectorAll('#timeline li[data-backend="server-2"]')];
            return items.some((i) => i.dataset.type === 'exited')
                && items.some((i) => i.dataset.type === 'restarted' && i.textContent.includes('after'));
            """, describe: "return document.getElementById('timeline').textContent;")

        // Add a replica from the page (keyboard: focus the count field, Enter submits the form).
        try browser.click("#add-n")
        try browser.press("\u{E007}")
        try waitForPool(browser, count: 4)
        let share =
            try browser.execute(
                "return Number(document.querySelector('#replicas tr[data-replica=\"server-4\"]').dataset.share);") as? Double ?? 0
        XCTAssertGreaterThan(share, 0.1, "server-4's share of keys among 4 replicas")
        XCTAssertLessThan(share, 0.45, "server-4's share of keys among 4 replicas")
        let total =
            try browser.execute(
                "return [...document.querySelectorAll('#keylist li')].reduce((s, li) => s + Number(li.dataset.share), 0);")
            as? Double
        XCTAssertEqual(total ?? 0, 1, accuracy: 0.001, "the shares cover the key space")
        assertReplicaState(
            try lb.request("GET", "/rep"), ["server-1", "server-2", "server-3", "server-4"], "/rep after the page's add")

        // Remove it again, from the keyboard: Enter on its Remove button asks for confirmation,
        // Escape cancels (focus back on the button, nothing removed), Enter again and confirm.
        try browser.execute("document.querySelector('#replicas tr[data-replica=\"server-4\"] button').focus();")
        try browser.press("\u{E007}")
        try browser.waitFor("the confirmation dialog", timeout: 5, "return document.getElementById('confirm-dialog').open;")
        try browser.press("\u{E00C}")
        try browser.waitFor(
            "the dialog closed by Escape, focus back on Remove", timeout: 5,
            """
            return !document.getElementById('confirm-dialog').open
                && document.activeElement.getAttribute('aria-label') === 'Remove server-4';
            """)
        XCTAssertEqual(try lb.replicaState().n, 4, "Escape removed nothing")
        try browser.press("\u{E007}")
        try browser.waitFor("the confirmation dialog again", timeout: 5, "return document.getElementById('confirm-dialog').open;")
        try browser.click("#confirm-remove")
        try waitForPool(browser, count: 3)
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2", "server-3"], "/rep after the page's remove")

        try assertNoConsoleErrors(browser, "failure, recovery, add and remove")

        // A refused command shows its error in the page (and, as a failed request, in the console).
        try browser.type("server-1", into: "#add-hostnames")
        try browser.click("#add-button")
        try browser.waitFor(
            "the refusal of a duplicate hostname shown", timeout: 10,
            """
            const m = document.getElementById('action-message');
            return m.classList.contains('error') && /Add failed \\(4\\d\\d\\)/.test(m.textContent);
            """, describe: "return document.getElementById('action-message').textContent;")
    }

    /// In cluster mode the page lists the nodes and the replicas each runs.
    func testThePageShowsTheClusterNodesAndWhatRunsOnEach() throws {
        let etcd = try startEtcdMember()
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--etcd", etcd, "--node-name", "n1", "--replicas", "2", "--node-lease", "2s",
            "--heartbeat-interval", "\(Int(heartbeat * 1000))ms",
        ])
        let browser = try startBrowser()
        try browser.open("http://127.0.0.1:\(lb.port)/dashboard")
        try waitForPool(browser, count: 2)
        try browser.waitFor(
            "the nodes section lists n1 with server-1 and server-2, and etcd up", timeout: 10,
            """
            const section = document.getElementById('nodes');
            const text = document.getElementById('nodes-list').textContent;
            return !section.hidden && text.includes('n1') && text.includes('server-1') && text.includes('server-2')
                && text.includes('etcd up');
            """,
            describe:
                "return document.getElementById('nodes').hidden + ' | ' + document.getElementById('nodes-list').textContent;")
        try assertNoConsoleErrors(browser, "cluster mode")
    }

    func testThePageReconnectsAndResynchronisesWhenTheStreamDrops() throws {
        let state = try temporaryDirectory()
        let first = try startLoadBalancer(
            ["--listen", "127.0.0.1:0", "--replicas", "3"], environment: ["STATE_DIRECTORY": state])
        let browser = try startBrowser()
        try browser.open("http://127.0.0.1:\(first.port)/dashboard")
        try waitForPool(browser, count: 3)
        let pids = try browser.execute("return window.dsDashboard.status.replicas.map((r) => r.pid);") as? [Int] ?? []
        XCTAssertEqual(pids.count, 3)

        // ds-lb stops (its graceful stop ends the stream): the page says so.
        XCTAssertTrue(first.process.send(signal: SIGTERM))
        XCTAssertEqual(first.process.waitForExit(timeout: 20), .exited(0))
        try browser.waitFor("the page no longer live", timeout: 10, "return window.dsDashboard.live === false;")

        // A new ds-lb on the same port, with the saved pool: the page comes back by itself and
        // shows the new processes (resynchronised, not the counters it had).
        _ = try startLoadBalancer(
            ["--listen", "127.0.0.1:\(first.port)"], environment: ["STATE_DIRECTORY": state])
        try waitForPool(browser, count: 3, timeout: 30)
        try browser.waitFor(
            "new pids shown", timeout: 10,
            "return window.dsDashboard.status.replicas.every((r) => !arguments[0].includes(r.pid));", [pids],
            describe: "return JSON.stringify(window.dsDashboard.status.replicas.map((r) => r.pid));")
    }

    func testThePageAsksForTheTokenAndRefusesAWrongOne() throws {
        let secret = "ZGFzaGJvYXJkLWFkbWluLXRva2VuLTIwMjY="
        let tokenFile = try temporaryDirectory() + "/admin-token"
        try (secret + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--admin-token-file", tokenFile])

        // The page itself needs no token; what it reads does.
        let page = try lb.request("GET", "/dashboard")
        XCTAssertEqual(page.status, 200, "\(page)")
        XCTAssertEqual(page.header("Content-Type"), "text/html; charset=utf-8")
        for path in ["/events", "/keyspace", "/status"] {
            assertFailure(try lb.request("GET", path), 401, "GET \(path) without the token")
        }

        let browser = try startBrowser()
        try browser.open("http://127.0.0.1:\(lb.port)/dashboard")
        try browser.waitFor("the token prompt", timeout: 10, "return document.getElementById('token-dialog').open;")

        try browser.type("not-the-token-at-all-0000", into: "#token-input")
        try browser.press("\u{E007}")
        try browser.waitFor(
            "the wrong token refused", timeout: 10,
            """
            return document.getElementById('token-dialog').open
                && document.getElementById('token-error').textContent.includes('refused (401)');
            """, describe: "return document.getElementById('token-error').textContent;")
        XCTAssertEqual(try browser.execute("return document.querySelectorAll('#replicas tbody tr').length;") as? Int, 0)

        try browser.type(secret, into: "#token-input")
        try browser.press("\u{E007}")
        try waitForPool(browser, count: 3)
        XCTAssertEqual(try browser.execute("return document.getElementById('token-dialog').open;") as? Bool, false)

        // Kept for the tab: a reload asks again for nothing.
        try browser.open("http://127.0.0.1:\(lb.port)/dashboard")
        try waitForPool(browser, count: 3)
        XCTAssertEqual(try browser.execute("return document.getElementById('token-dialog').open;") as? Bool, false)

        // The only console errors are the refused requests themselves (Chromium logs every 401).
        let errors = try browser.consoleMessages().filter { $0.level == "SEVERE" || $0.level == "WARNING" }
        XCTAssertEqual(errors.filter { !$0.message.contains("401") }.map(\.message), [], "console errors other than the 401s")
    }
}
