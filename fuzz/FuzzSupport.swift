// Shared by the fuzz targets (compiled into each): a failed property is a crash, so libFuzzer
// keeps the input that broke it and prints the reason first.

#if canImport(Glibc)
import Glibc
#endif

/// Stops the run with `message` on stderr; `abort` (not `fatalError`) so libFuzzer's signal
/// handler writes the crash file at once without going through Swift's backtracer.
func violated(_ message: @autoclosure () -> String) -> Never {
    let text = "fuzz property violated: \(message())\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
    abort()
}

func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { violated(message()) }
}

/// A split point inside `count` bytes derived from the input itself, so the same input always
/// splits the same way (libFuzzer needs deterministic targets).
func splitPoint(_ bytes: UnsafeRawBufferPointer) -> Int {
    guard bytes.count > 1 else { return 0 }
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes.prefix(16) { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return Int(h % UInt64(bytes.count))
}
