import Testing
@testable import MiniGPT
