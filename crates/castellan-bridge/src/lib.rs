//! Castellan host bridge: the network link of the QEMU `mps2-an505` device (work in progress).
