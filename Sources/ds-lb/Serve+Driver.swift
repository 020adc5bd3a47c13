import ArgumentParser
import DSBalancer
import DSControl
import DSDocker
import Logging

extension Serve {
    func validateDocker() throws {
        // Docker's network names: a letter or digit, then letters, digits, '_', '.', '-'. "none"
        // and "container:<id>" leave no address to reach a replica at.
        guard let first = network.first, first.isASCII && (first.isLetter || first.isNumber), network.count <= 128,
            network.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }), network != "none"
        else {
            throw ValidationError("--network: '\(network)' is not usable (use host, or the name of a user-defined network)")
        }
        guard !pool.isEmpty, pool.count <= 63,
            pool.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) })
        else {
            throw ValidationError("--pool: '\(pool)' is not a valid name (letters, digits, '_', '.', '-')")
        }
        guard !image.isEmpty else { throw ValidationError("--image must not be empty") }
    }

    /// Local ds-server children, on the advertise address in cluster mode.
    private func processDriver() throws -> ProcessDriver {
        ProcessDriver(
            serverBinary: try serverBinary ?? Self.siblingBinary("ds-server"),
            host: try clusterOptions()?.advertiseAddress ?? "127.0.0.1")
    }

    /// Containers on this host's engine; in cluster mode labelled with the node and, on the host
    /// network, listening on the advertise address.
    private func dockerDriver(client: DockerClient, logger: Logger) throws -> DockerDriver {
        let cluster = try clusterOptions()
        return try DockerDriver(
            client: client, image: image, pool: pool, network: network,
            host: cluster?.advertiseAddress ?? ReplicaContainer.loopback, node: cluster?.nodeName, logger: logger)
    }

    /// The driver `--driver` asks for. `auto` picks docker when the engine answers and has the
    /// image, else local processes, and says which and why. Blocks briefly (engine calls): call
    /// before the control loop runs.
    func makeDriver(staticBackends: [Backend], logger: Logger) throws -> ReplicaDriver {
        switch driver {
        case "static":
            return StaticDriver(backends: staticBackends)
        case "docker":
            let client: DockerClient
            do { client = try DockerClient.connect() } catch {
                throw Failure(description: "--driver docker: \(error)")
            }
            do {
                guard try client.imageExists(image) else {
                    throw Failure(
                        description:
                            "--driver docker: image '\(image)' not found on the engine; build it with `make images` or pass --image"
                    )
                }
                return try dockerDriver(client: client, logger: logger)
            } catch let error as Failure { throw error } catch {
                throw Failure(description: "--driver docker: \(error)")
            }
        case "auto":
            // Bounded: no socket fails at once, a silent engine after 2 s, so ds-lb without Docker
            // starts with local processes without a noticeable wait.
            do {
                let client = try DockerClient.connect(timeout: .seconds(2), connectTimeout: .seconds(1))
                if try client.imageExists(image, timeout: .seconds(2)) {
                    logger.info(
                        "[i] --driver auto: using docker (engine \(client.engineVersion) answers at \(client.socketPath), image \(image) present)"
                    )
                    return try dockerDriver(client: client, logger: logger)
                }
                logger.info("[i] --driver auto: using process (the Docker engine has no image \(image))")
            } catch {
                logger.info("[i] --driver auto: using process (\(error))")
            }
            return try processDriver()
        default:
            return try processDriver()
        }
    }
}
