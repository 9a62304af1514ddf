#if FUZZING
/// libFuzzer's driver for the fuzz executables (NETCONFFuzz, CareFuzz). SwiftPM links an
/// executable with `main` aliased to `<target>_main`, which keeps libFuzzer's own main() out of
/// the link, so each fuzz target starts the driver from there through this one function. Only
/// in fuzzing builds (`-DFUZZING`, linked with `-sanitize=fuzzer`), where the symbol exists.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

/// Runs libFuzzer with the process's arguments, feeding each input to `callback`.
public func runLibFuzzer(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32 {
    var count = argc
    var vector = argv
    return LLVMFuzzerRunDriver(&count, &vector, callback)
}
#endif
