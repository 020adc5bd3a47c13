import DSBalancer

enum DSBalancerBackend {
    static func make(_ name: String, _ number: Int) -> Backend {
        Backend(name: name, number: number, host: "127.0.0.1", port: UInt16(20000 + number))
    }
}
