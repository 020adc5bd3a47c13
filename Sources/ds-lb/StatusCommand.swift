import ArgumentParser
import DSSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `ds-lb status`: `GET /status` of a running ds-lb, printed as a table.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the replicas of a running ds-lb (GET /status) as a table.")

    @Option(help: "Address of the running ds-lb.")
    var address: String = "127.0.0.1:5000"

    @Flag(help: "Print the raw JSON.")
    var json = false

    func run() throws {
        let target: SocketAddress
        do { target = try SocketAddress.parse(address) } catch { throw ValidationError("--address: \(error)") }
        let body = try Self.get("/status", from: target)
        if json {
            print(String(decoding: body, as: UTF8.self))
            return
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let message = object["message"] as? [String: Any]
        else {
            throw Failure(
                description:
                    "\(address) did not answer /status with ds-lb's JSON: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        let replicas = message["replicas"] as? [[String: Any]] ?? []
        print(
            "generation \(message["generation"] ?? "?")  algorithm \(message["algorithm"] ?? "?")  driver \(message["driver"] ?? "?")  uptime \(message["uptime_s"] ?? "?")s  replicas \(replicas.count)"
        )
        let cluster = message["cluster"] as? [String: Any]
        var columns = [
            "NAME", "ID", "ADDRESS", "STATE", "WEIGHT", "PID", "LAST CHECK", "MS", "FAILS", "RESTARTS", "REQUESTS", "IN FLIGHT",
        ]
        var keys = [
            "name", "id", "address", "state", "weight", "pid", "last_check", "last_check_ms", "consecutive_failures", "restarts",
            "requests", "in_flight",
        ]
        if cluster != nil {
            columns.insert("NODE", at: 4)
            keys.insert("node", at: 4)
        }
        Self.printTable(columns: columns, rows: replicas.map { replica in keys.map { Self.cell(replica[$0]) } })
        guard let cluster else { return }
        let nodes = cluster["nodes"] as? [[String: Any]] ?? []
        let store = cluster["store"] as? String ?? "?"
        let problem = (cluster["store_problem"] as? String).map { " (\($0))" } ?? ""
        print("")
        print(
            "cluster node \(cluster["node"] ?? "?")  etcd \(store)\(problem)  revision \(cluster["revision"] ?? "?")  nodes \(nodes.count)"
        )
        Self.printTable(
            columns: ["NODE", "ADDRESS", "STATE", "REPLICAS"],
            rows: nodes.map { node in
                [
                    Self.cell(node["name"]), Self.cell(node["address"]), Self.cell(node["state"]),
                    (node["replicas"] as? [String] ?? []).joined(separator: ","),
                ]
            })
    }

    private static func cell(_ value: Any?) -> String {
        switch value {
        case let value as String: return value
        case let value as NSNumber: return value.stringValue
        default: return "-"
        }
    }

    private static func printTable(columns: [String], rows: [[String]]) {
        let widths = columns.indices.map { i in ([columns[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        for row in [columns] + rows {
            print(row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }

    /// One blocking GET with a 5 s timeout; returns the body of a 200.
    static func get(_ path: String, from address: SocketAddress) throws -> [UInt8] {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rc = address.withSockAddr { connect(fd, $0, $1) }
        guard rc == 0 else { throw Failure(description: "cannot reach ds-lb at \(address): \(String(cString: strerror(errno)))") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            throw Failure(description: "cannot send to \(address): \(String(cString: strerror(errno)))")
        }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n > 0 { response += chunk[0..<n]; continue }
            if n == 0 { break }
            throw Failure(description: "no answer from \(address): \(String(cString: strerror(errno)))")
        }
        guard
            let split = response.indices.dropLast(3).first(where: {
                response[$0] == 13 && response[$0 + 1] == 10 && response[$0 + 2] == 13 && response[$0 + 3] == 10
            })
        else {
            throw Failure(description: "\(address) sent an incomplete response")
        }
        let statusLine = String(decoding: response[..<(response.firstIndex(of: 13) ?? split)], as: UTF8.self)
        let body = Array(response[(split + 4)...])
        guard statusLine.contains(" 200 ") else {
            throw Failure(description: "\(address)\(path): \(statusLine) \(String(decoding: body.prefix(300), as: UTF8.self))")
        }
        return body
    }
}
