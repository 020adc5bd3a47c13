import CLinux

/// Returning freed heap memory to the kernel. glibc keeps the pages of freed small blocks (below
/// its 128 KiB mmap threshold) in its arenas for reuse; after a crowd of thousands of connections
/// (slowloris cut by the head timeout) has come and gone, that is tens of MiB of RSS that no
/// one will use again. `malloc_trim(0)` hands whole free pages back (madvise), in every arena.
package enum HeapTrim {
    /// Any thread. Takes each arena's lock in turn: call it once after a burst, not per event.
    @discardableResult
    package static func releaseFreePages() -> Bool {
        cl_malloc_trim() == 1
    }
}
