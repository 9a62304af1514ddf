import Logging

/// For tests: warnings and errors on stderr; the info lines of every collection would bury the
/// test report.
public func makeTestLogger() -> Logging.Logger {
    var logger = Logging.Logger(label: "test", factory: { label in StreamLogHandler.standardError(label: label) })
    logger.logLevel = Logging.Logger.Level.warning
    return logger
}

extension Logging.Logger {
    public static var test: Logging.Logger { makeTestLogger() }
}
