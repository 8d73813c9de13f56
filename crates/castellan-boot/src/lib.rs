//! Castellan boot: the ROM stage and the bootloader (work in progress).
#![no_std]
#![forbid(unsafe_code)]
