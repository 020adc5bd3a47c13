// ds-bench: load generator and the A-1…A-4 analyses (issue #8). Wiring lands with the load command.
import ArgumentParser

struct DSBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ds-bench", abstract: "Load generator and analyses for ds-lb.")
    func run() throws { throw CleanExit.helpRequest(self) }
}

DSBench.main()
