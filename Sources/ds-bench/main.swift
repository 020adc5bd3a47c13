// ds-bench: the load generator and the A-1…A-4 analyses. Wiring only.
import ArgumentParser

struct DSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ds-bench",
        abstract: "Load generator and analyses for ds-lb.",
        subcommands: [LoadCommand.self, AnalysisCommand.self])
}

DSBench.main()
