// Shared by the fuzz targets (compiled into each): the libFuzzer entry point, and the failure
// path — a failed property is a crash, so libFuzzer keeps the input that broke it and prints the
// reason first. Each target file defines `fuzz(_:)` with only the properties of its code.

#if canImport(Glibc)
import Glibc
#endif

/// libFuzzer's entry, one per binary: every target is linked with this file and exactly one
/// target file, whose `fuzz(_ input: UnsafeRawBufferPointer)` it calls. The view over `data`
/// does not escape the call: libFuzzer owns the buffer and reuses it for the next input (ASan
/// sizes it exactly, so a read past `size` is reported, not read).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafeRawPointer?, _ size: Int) -> CInt {
    fuzz(UnsafeRawBufferPointer(start: data, count: size))
    return 0  // libFuzzer reserves every other value
}

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
