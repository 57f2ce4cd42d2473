import Foundation

/// A 2-D point or vector in metres (world frame: x right, y up, angles counter-clockwise).
public struct Vec2: Hashable, Sendable, Codable {
    /// x coordinate in metres.
    public var x: Double
    /// y coordinate in metres.
    public var y: Double
    /// A point from its coordinates.
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
    /// Vector sum.
    public static func + (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x + b.x, a.y + b.y) }
    /// Vector difference.
    public static func - (a: Vec2, b: Vec2) -> Vec2 { Vec2(a.x - b.x, a.y - b.y) }
    /// Scaling.
    public static func * (a: Vec2, s: Double) -> Vec2 { Vec2(a.x * s, a.y * s) }
    /// Euclidean length.
    public var length: Double { (x * x + y * y).squareRoot() }
    /// Unit vector at angle `a` (radians, counter-clockwise from +x).
    public static func unit(_ a: Double) -> Vec2 { Vec2(cos(a), sin(a)) }
}

/// An axis-aligned rectangle (walls and static boxes): lower-left corner, width, height.
public struct Rect: Hashable, Sendable {
    /// Lower-left x.
    public var x: Double
    /// Lower-left y.
    public var y: Double
    /// Width (x extent), > 0.
    public var w: Double
    /// Height (y extent), > 0.
    public var h: Double
    /// A rectangle from its lower-left corner and size.
    public init(x: Double, y: Double, w: Double, h: Double) { self.x = x; self.y = y; self.w = w; self.h = h }

    /// Upper-right x.
    public var maxX: Double { x + w }
    /// Upper-right y.
    public var maxY: Double { y + h }

    /// Squared distance from `p` to the rectangle (0 inside).
    @inline(__always)
    public func distanceSquared(to p: Vec2) -> Double {
        let dx = max(x - p.x, 0, p.x - maxX)
        let dy = max(y - p.y, 0, p.y - maxY)
        return dx * dx + dy * dy
    }

    /// True when a disc of radius `r` at `c` overlaps the rectangle.
    @inline(__always)
    public func intersects(circle c: Vec2, radius r: Double) -> Bool {
        distanceSquared(to: c) < r * r
    }

    /// Distance along the ray `o + t·d` (d unit, t ≥ 0) to the rectangle, or +∞ if missed
    /// (slab method; a ray starting inside returns 0).
    @inline(__always)
    public func rayHit(origin o: Vec2, dir d: Vec2) -> Double {
        var tmin = 0.0, tmax = Double.infinity
        if abs(d.x) < 1e-12 {
            if o.x < x || o.x > maxX { return .infinity }
        } else {
            let inv = 1 / d.x
            var t1 = (x - o.x) * inv, t2 = (maxX - o.x) * inv
            if t1 > t2 { swap(&t1, &t2) }
            tmin = max(tmin, t1); tmax = min(tmax, t2)
        }
        if abs(d.y) < 1e-12 {
            if o.y < y || o.y > maxY { return .infinity }
        } else {
            let inv = 1 / d.y
            var t1 = (y - o.y) * inv, t2 = (maxY - o.y) * inv
            if t1 > t2 { swap(&t1, &t2) }
            tmin = max(tmin, t1); tmax = min(tmax, t2)
        }
        return tmin <= tmax ? tmin : .infinity
    }
}

/// Distance along the ray `o + t·d` (d unit) to the circle (c, r), or +∞ if missed; 0 if inside.
@inline(__always)
func rayCircle(origin o: Vec2, dir d: Vec2, center c: Vec2, radius r: Double) -> Double {
    let mx = o.x - c.x, my = o.y - c.y
    let b = mx * d.x + my * d.y
    let cc = mx * mx + my * my - r * r
    if cc <= 0 { return 0 }
    if b > 0 { return .infinity }
    let disc = b * b - cc
    if disc < 0 { return .infinity }
    return -b - disc.squareRoot()
}

/// `a` wrapped to (-π, π].
@inline(__always)
public func wrapAngle(_ a: Double) -> Double {
    var r = a.truncatingRemainder(dividingBy: 2 * .pi)
    if r > .pi { r -= 2 * .pi } else if r <= -.pi { r += 2 * .pi }
    return r
}
