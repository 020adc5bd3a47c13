/// xxHash64 (Yann Collet, XXH64 as specified in `doc/xxhash_spec.md`, "XXH64 Algorithm
/// Description"). Written from the specification: four 64-bit lanes over 32-byte stripes, then a
/// tail of 8-, 4- and 1-byte steps, then the avalanche. Output is identical to the reference
/// `XXH64()` on little- and big-endian hosts because input words are read as little-endian.
///
/// Why xxHash64: routing must be deterministic across processes and machines (never Swift's
/// per-process seeded `Hasher`: docs/ARCHITECTURE.md §7), well mixed (every output bit depends on
/// every input bit, so ring points and table slots are uniform), and cheap on short keys (a query
/// parameter is a few tail steps and the avalanche). It is also what Envoy's ring hash and
/// Maglev use.
///
/// Thread safety: pure functions, any thread.
///
/// Usable from inline so that `hash` inlines and specializes in the modules that hash a request key
/// per request.
@usableFromInline package enum XXH64 {
    // The five primes of the specification.
    @usableFromInline static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    @usableFromInline static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    @usableFromInline static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    @usableFromInline static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    @usableFromInline static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inlinable @inline(__always)
    static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 {
        (x &<< r) | (x &>> (64 &- r))
    }

    /// One lane step of the stripe loop (spec: "round").
    @inlinable @inline(__always)
    static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var acc = acc &+ input &* p2
        acc = rotl(acc, 31)
        return acc &* p1
    }

    /// Folds one lane accumulator into the hash after the stripe loop (spec: "merge").
    @inlinable @inline(__always)
    static func mergeRound(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        let acc = acc ^ round(0, val)
        return acc &* p1 &+ p4
    }

    /// Final mixing so that every input bit affects every output bit (spec: "avalanche").
    @inlinable @inline(__always)
    static func avalanche(_ h: UInt64) -> UInt64 {
        var h = h
        h ^= h &>> 33
        h = h &* p2
        h ^= h &>> 29
        h = h &* p3
        h ^= h &>> 32
        return h
    }

    @inlinable @inline(__always)
    static func read64(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable @inline(__always)
    static func read32(_ base: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    /// Any thread. The 64-bit xxHash of `bytes` with `seed`.
    ///
    /// Always inlined: a request key is hashed once per request, right before the table lookup
    /// that needs the result, and as a call the hash paid for saving and restoring registers and
    /// the lookup could not start its table read any earlier. Inputs of 32 bytes or more take
    /// the stripe loop out of line.
    @inlinable @inline(__always)
    package static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let length = bytes.count
        guard let base = bytes.baseAddress, length > 0 else {
            return avalanche(seed &+ p5)
        }
        // Offsets stay below `length`, a buffer's count, so the wrapping arithmetic never wraps.
        var offset = 0
        var h: UInt64
        if length >= 32 {
            h = stripes(base, length, seed)
            offset = length & ~31
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt64(truncatingIfNeeded: length)

        // Tail: 8-byte words, then one 4-byte word, then single bytes (spec step 5).
        while offset &+ 8 <= length {
            h ^= round(0, read64(base, offset))
            h = rotl(h, 27) &* p1 &+ p4
            offset &+= 8
        }
        if offset &+ 4 <= length {
            h ^= read32(base, offset) &* p1
            h = rotl(h, 23) &* p2 &+ p3
            offset &+= 4
        }
        while offset < length {
            h ^= UInt64(base.load(fromByteOffset: offset, as: UInt8.self)) &* p5
            h = rotl(h, 11) &* p1
            offset &+= 1
        }
        return avalanche(h)
    }

    /// The 32-byte stripes of an input of at least 32 bytes, merged (spec steps 1–4, without the
    /// length): every whole stripe, `length & ~31` bytes.
    @usableFromInline @inline(never)
    static func stripes(_ base: UnsafeRawPointer, _ length: Int, _ seed: UInt64) -> UInt64 {
        var v1 = seed &+ p1 &+ p2
        var v2 = seed &+ p2
        var v3 = seed
        var v4 = seed &- p1
        var offset = 0
        let limit = length &- 32
        repeat {
            v1 = round(v1, read64(base, offset))
            v2 = round(v2, read64(base, offset &+ 8))
            v3 = round(v3, read64(base, offset &+ 16))
            v4 = round(v4, read64(base, offset &+ 24))
            offset &+= 32
        } while offset <= limit
        var h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        h = mergeRound(h, v1)
        h = mergeRound(h, v2)
        h = mergeRound(h, v3)
        h = mergeRound(h, v4)
        return h
    }

    /// Any thread. The 64-bit xxHash of the UTF-8 bytes of `string`.
    @inlinable
    package static func hash(_ string: String, seed: UInt64 = 0) -> UInt64 {
        var s = string
        return s.withUTF8 { hash(UnsafeRawBufferPointer($0), seed: seed) }
    }

    /// Any thread. The xxHash64 of the 8 little-endian bytes of `value`, computed without a
    /// buffer. Equal to `hash` over those 8 bytes; tables use it to derive per-slot values.
    @inlinable
    package static func hash(_ value: UInt64, seed: UInt64 = 0) -> UInt64 {
        var h = seed &+ p5 &+ 8
        h ^= round(0, value)
        h = rotl(h, 27) &* p1 &+ p4
        return avalanche(h)
    }
}
