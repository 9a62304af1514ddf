// Re-exported so that code importing Agent keeps seeing ConfigurationFile and ConfigurationError,
// which moved to the lower ConfigurationSyntax target (shared with support.conf).
@_exported import ConfigurationSyntax

extension SectionGrammar {
    /// agent.conf's sections: `[agent]`, `[defaults]`, `[upload]`, `[reports]`, `[group NAME]`,
    /// `[device NAME]`, `[event KIND]`, `[syslog]`, `[events]`, `[inventory NAME]`.
    public static let agentConfiguration = SectionGrammar(
        kinds: [
            .init("agent"), .init("defaults"), .init("upload"), .init("reports"), .init("syslog"), .init("events"),
            .init("group", takesName: true, example: "[group core-routers]"),
            .init("device", takesName: true, example: "[device core-routers]"),
            .init("event", takesName: true, example: "[event core-dump]"),
            .init("inventory", takesName: true, example: "[inventory netbox]"),
        ],
        summary: "agent, defaults, upload, reports, syslog, events, group NAME, device NAME, event KIND or inventory NAME",
        firstSection: "[agent]")
}

extension ConfigurationFile {
    /// Reads agent.conf.
    public init(path: String) throws(ConfigurationError) {
        try self.init(path: path, grammar: .agentConfiguration)
    }

    /// Parses agent.conf text (`path` names it in errors).
    public init(path: String, text: String) throws(ConfigurationError) {
        try self.init(path: path, text: text, grammar: .agentConfiguration)
    }
}
