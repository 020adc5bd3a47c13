// ds-bench: the load generator and the analyses (load distribution, scaling, failure recovery, hash functions). Wiring only.
import ArgumentParser

struct DSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-bench",
        abstract: "Load generator and analyses for ds-lb.",
        subcommands: [LoadCommand.self, AnalysisCommand.self])
}

DSBench.main()
