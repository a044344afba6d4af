//! How long the desktop has been without input (keyboard, mouse), for "away after N idle
//! minutes". On X11 the MIT-SCREEN-SAVER extension knows (libXss, loaded when asked, so the
//! app starts without it); elsewhere (Wayland) the answer is "unknown" and the page counts
//! its own window's input instead.

use std::os::raw::c_int;

use x11_dl::xlib::{Display, Drawable, Xlib};
use x11_dl::xss::XScreenSaverInfo;

type AllocInfo = unsafe extern "C" fn() -> *mut XScreenSaverInfo;
type QueryInfo = unsafe extern "C" fn(*mut Display, Drawable, *mut XScreenSaverInfo) -> c_int;

/// Milliseconds since the last input anywhere on the X display; None where that cannot
/// be known.
pub fn desktop_idle_ms() -> Option<u64> {
    std::env::var_os("DISPLAY")?;
    let xlib = Xlib::open().ok()?;
    // Debian's libxss1 has only libXss.so.1 (x11-dl's own loader wants .so.2 or the -dev
    // package's link).
    let xss = ["libXss.so.1", "libXss.so"]
        .iter()
        // SAFETY: loading a system library whose initialisers are plain C.
        .find_map(|name| unsafe { libloading::Library::new(name) }.ok())?;
    // SAFETY: the symbols have these C signatures (X11/extensions/scrnsaver.h); the display
    // is checked, the info is allocated by the library and freed once, and both outlive
    // their use here.
    unsafe {
        let alloc: libloading::Symbol<AllocInfo> = xss.get(b"XScreenSaverAllocInfo\0").ok()?;
        let query: libloading::Symbol<QueryInfo> = xss.get(b"XScreenSaverQueryInfo\0").ok()?;
        let display = (xlib.XOpenDisplay)(std::ptr::null());
        if display.is_null() {
            return None;
        }
        let info = alloc();
        let mut idle = None;
        if !info.is_null() {
            if query(display, (xlib.XDefaultRootWindow)(display), info) != 0 {
                idle = Some((*info).idle);
            }
            (xlib.XFree)(info.cast());
        }
        (xlib.XCloseDisplay)(display);
        idle
    }
}
