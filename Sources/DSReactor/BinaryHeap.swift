/// A min-heap ordered by `areInOrder`, for the loop's timers.
struct BinaryHeap<Element> {
    private var storage: [Element] = []
    private let areInOrder: (Element, Element) -> Bool

    init(areInOrder: @escaping (Element, Element) -> Bool) {
        self.areInOrder = areInOrder
    }

    var peek: Element? { storage.first }
    var count: Int { storage.count }

    mutating func push(_ element: Element) {
        storage.append(element)
        var child = storage.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard areInOrder(storage[child], storage[parent]) else { break }
            storage.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !storage.isEmpty else { return nil }
        storage.swapAt(0, storage.count - 1)
        let top = storage.removeLast()
        siftDown(0)
        return top
    }

    /// Drops every element `shouldRemove` picks and restores the heap order (Floyd's bottom-up
    /// build, O(n)); the storage is reused, so nothing is allocated.
    mutating func removeAll(where shouldRemove: (Element) -> Bool) {
        storage.removeAll(where: shouldRemove)
        var parent = storage.count / 2 - 1
        while parent >= 0 {
            siftDown(parent)
            parent -= 1
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var best = parent
            if left < storage.count && areInOrder(storage[left], storage[best]) { best = left }
            if right < storage.count && areInOrder(storage[right], storage[best]) { best = right }
            if best == parent { break }
            storage.swapAt(parent, best)
            parent = best
        }
    }
}
