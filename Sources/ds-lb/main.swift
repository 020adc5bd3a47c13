import ArgumentParser

/// ds-lb: a consistent-hashing HTTP load balancer. `ds-lb` alone is `ds-lb serve`.
struct DSLB: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-lb",
        abstract: "Consistent-hashing HTTP load balancer with a self-managed replica pool.",
        subcommands: [Serve.self, RingCommand.self, StatusCommand.self, ConfigCommand.self],
        defaultSubcommand: Serve.self)
}

ServeInvocation.main()
