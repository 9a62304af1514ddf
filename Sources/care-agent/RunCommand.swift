import Agent
import Bundle
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// `care-agent run`: the service. Scheduler, control socket, watchdog and SIGHUP reload as one
/// ServiceGroup; SIGTERM and SIGINT shut it down gracefully.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the agent as a service (systemd Type=notify).",
        discussion: """
        Collects each group on its schedule, answers `care-agent status` and `care-agent collect now` \
        on the control socket <runtime-directory>/control.sock, reloads agent.conf on SIGHUP (keeping \
        the running configuration if the new one is broken) and stops on SIGTERM.
        """
    )

    @Option(help: "agent.conf.") var config: String = AgentConfiguration.defaultPath
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    func validate() throws {
        // A typo (`verbose`) must not silently log at info.
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel): expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        // Under systemd stderr is the journal: priorities as <N>, no second timestamp.
        var logger = Logger(label: "care-agent") { StandardErrorLogHandler(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let configuration: AgentConfiguration
        do {
            configuration = try AgentConfiguration.load(path: config)
        } catch {
            Console.error("\(error)")
            throw ExitCode(2)
        }
        // Writes to a peer that left fail with EPIPE instead of killing the service.
        signal(SIGPIPE, SIG_IGN)
        // A reload asked for before the reload service runs (READY=1 may reach systemd first)
        // would otherwise end the process: SIGHUP's default action is to terminate.
        signal(SIGHUP, SIG_IGN)
        let notifier = SystemdNotifier()
        // The agent key is created (or loaded) once; a reload may move the outbox, not the key.
        let key: AgentKey
        do {
            key = try AgentKey.loadOrCreate(stateDirectory: URL(fileURLWithPath: configuration.agent.stateDirectory))
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        // The public half for `care-agent key show` by the care-agent group; a failure costs only that.
        do {
            try key.writePublicKeyFile(stateDirectory: URL(fileURLWithPath: configuration.agent.stateDirectory))
        } catch {
            logger.warning("cannot write the agent's public key file", metadata: ["error": "\(error)"])
        }
        let sinkLogger = logger
        let runtime = try AgentRuntime(configuration: configuration, configurationPath: config, logger: logger, makeSink: {
            BundleSink(outbox: $0.agent.outbox, key: key, agent: AgentIdentity(id: $0.agent.agentID, version: AgentIdentity.careAgentVersion),
                       logger: sinkLogger)
        })
        await runtime.writeMetrics()
        try? FileManager.default.createDirectory(atPath: configuration.agent.runtimeDirectory, withIntermediateDirectories: true)
        let control: ControlServer
        do {
            control = try ControlServer(path: configuration.agent.runtimeDirectory + "/control.sock", runtime: runtime, logger: logger)
        } catch {
            Console.error("\(error)")
            throw ExitCode(1)
        }
        // Half-written bundles of a killed predecessor are removed; finished ones stay. Not by
        // age: a `collect now --standalone` may be writing into the same outbox right now, and
        // its file is told apart by the lock its writer holds.
        BundleWriter(directory: URL(fileURLWithPath: configuration.agent.outbox), key: key).removeAbandonedTemporaryFiles()
        // And what other writes a kill left (results, inventories, notices, metrics, known_hosts):
        // by age, for the same reason.
        let state = configuration.agent.stateDirectory
        var leftovers = ["", "/results", "/inventory", "/webhook"].flatMap { removeStaleTemporaryFiles(in: state + $0) }
        if let metrics = configuration.agent.metricsPath {
            leftovers += removeStaleTemporaryFiles(in: (metrics as NSString).deletingLastPathComponent, prefixes: [(metrics as NSString).lastPathComponent])
        }
        for directory in Set(configuration.groups.values.map { ($0.knownHosts as NSString).deletingLastPathComponent }) where directory != state {
            leftovers += removeStaleTemporaryFiles(in: directory, prefixes: ["known_hosts"])
        }
        for path in leftovers { logger.info("removed a temporary file an interrupted write left", metadata: ["path": "\(path)"]) }
        // One responder: the poll and syslog share the rate limit and de-duplication.
        let responder = IncidentResponder(runtime: runtime, logger: logger)
        var services: [any Service] = [
            ReadinessNotice(notifier: notifier, status: "\(configuration.devices.count) devices"),
            // Before the scheduler: the first refresh of the [inventory] sources starts at once.
            InventoryRefresher(runtime: runtime, logger: logger),
            Scheduler(runtime: runtime, logger: logger), control, ReloadOnHangupService(runtime: runtime, notifier: notifier),
            // Always running: a reload may turn uploading on or off ([upload] url).
            Uploader(runtime: runtime, logger: logger),
            // Always running: polls only devices of groups with `poll` set (a reload may set it).
            HealthPoller(runtime: runtime, logger: logger, responder: responder),
            // Idle without [syslog]; the listeners are opened at start (sockets from systemd or bound here).
            SyslogReceiver(runtime: runtime, logger: logger, responder: responder),
            // Always running: a reload may set [events] webhook; queued notices survive restarts.
            WebhookSender(runtime: runtime, logger: logger),
        ]
        if let interval = SystemdNotifier.watchdogInterval() {
            services.append(WatchdogService(notifier: notifier, interval: interval, runtime: runtime))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        logger.notice("care-agent running", metadata: [
            "devices": "\(configuration.devices.count)", "groups": "\(configuration.groups.count)", "socket": "\(control.path)",
        ])
        try await group.run()
        notifier.notify("STOPPING=1")
        // A metrics rewrite still waiting for its turn (uploads, events of the last seconds).
        await runtime.flushPendingMetrics()
        // Stopped during a collection, SSH sessions cancelled a moment ago may still be inside
        // libssh2/OpenSSL on the event-loop threads; exit()'s handlers (OPENSSL_cleanup among
        // them) then free locks under their feet and the agent dies of SIGSEGV instead of exiting
        // 0. Everything the agent writes is on disk already (fsynced bundles, atomic state files,
        // unbuffered log lines), so the process ends here without running those handlers.
        fflush(nil)
        _exit(0)
    }
}
