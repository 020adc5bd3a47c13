/// The fields of a parsed head, in order: the first eight stored inline, the rest in an array,
/// so an ordinary request head (a handful of fields) is parsed without a heap allocation.
///
/// Safety: `inline` is a tuple of eight `HeaderField`s (trivial 16-byte values); slot `i` is read
/// and written through its raw bytes at offset `i * stride`, only for `i < min(count, 8)` on reads
/// and `i == count < 8` on writes, so every access stays inside the tuple.
package struct HeaderFieldList: RandomAccessCollection, Sendable, Equatable, CustomStringConvertible {
    package static let inlineCapacity = 8
    private static let zero = HeaderField(nameStart: 0, nameEnd: 0, valueStart: 0, valueEnd: 0)
    private var inline = (zero, zero, zero, zero, zero, zero, zero, zero)
    private var overflow: [HeaderField] = []
    package private(set) var count = 0

    package init() {}

    package var startIndex: Int { 0 }
    package var endIndex: Int { count }

    package subscript(position: Int) -> HeaderField {
        precondition(position >= 0 && position < count, "field index out of range")
        if position < Self.inlineCapacity {
            return withUnsafeBytes(of: inline) {
                $0.load(fromByteOffset: position * MemoryLayout<HeaderField>.stride, as: HeaderField.self)
            }
        }
        return overflow[position - Self.inlineCapacity]
    }

    package mutating func append(_ field: HeaderField) {
        if count < Self.inlineCapacity {
            let offset = count * MemoryLayout<HeaderField>.stride
            withUnsafeMutableBytes(of: &inline) { $0.storeBytes(of: field, toByteOffset: offset, as: HeaderField.self) }
        } else {
            overflow.append(field)
        }
        count += 1
    }

    package static func == (a: HeaderFieldList, b: HeaderFieldList) -> Bool {
        a.elementsEqual(b)
    }

    package var description: String { Array(self).description }
}
