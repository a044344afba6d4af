//! What a user does to windows on an X display, done through Xlib: close a window the way a
//! window manager's close button does (a WM_DELETE_WINDOW message), see whether it is
//! shown, click somewhere (XTest), and photograph the whole screen (for a tray menu, which
//! no WebDriver screenshot shows).

use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

use x11_dl::xlib::{self, Xlib};
use x11_dl::xtest::Xf86vmode as XTest;

/// An open connection to one display.
pub struct X {
    lib: Xlib,
    display: *mut xlib::Display,
}

impl Drop for X {
    fn drop(&mut self) {
        unsafe { (self.lib.XCloseDisplay)(self.display) };
    }
}

/// A top-level window and where it is.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub window: xlib::Window,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub mapped: bool,
}

impl X {
    pub fn open(display: &str) -> X {
        let lib = Xlib::open().expect("libX11");
        let name = CString::new(display).unwrap();
        let display = unsafe { (lib.XOpenDisplay)(name.as_ptr()) };
        assert!(
            !display.is_null(),
            "cannot open display {}",
            name.to_string_lossy()
        );
        X { lib, display }
    }

    fn root(&self) -> xlib::Window {
        unsafe { (self.lib.XDefaultRootWindow)(self.display) }
    }

    /// The window's title: _NET_WM_NAME (UTF-8, what GTK sets), else WM_NAME.
    fn name_of(&self, window: xlib::Window) -> Option<String> {
        unsafe {
            let net_wm_name = (self.lib.XInternAtom)(self.display, c"_NET_WM_NAME".as_ptr(), 0);
            let utf8 = (self.lib.XInternAtom)(self.display, c"UTF8_STRING".as_ptr(), 0);
            let (mut kind, mut format, mut items, mut after) = (0, 0, 0, 0);
            let mut data: *mut u8 = ptr::null_mut();
            let read = (self.lib.XGetWindowProperty)(
                self.display,
                window,
                net_wm_name,
                0,
                1024,
                0,
                utf8,
                &mut kind,
                &mut format,
                &mut items,
                &mut after,
                &mut data,
            );
            if read == 0 && !data.is_null() {
                let text =
                    String::from_utf8_lossy(std::slice::from_raw_parts(data, items as usize))
                        .into_owned();
                (self.lib.XFree)(data.cast());
                if !text.is_empty() {
                    return Some(text);
                }
            }
        }
        let mut name: *mut i8 = ptr::null_mut();
        unsafe {
            if (self.lib.XFetchName)(self.display, window, &mut name) == 0 || name.is_null() {
                return None;
            }
            let text = CStr::from_ptr(name).to_string_lossy().into_owned();
            (self.lib.XFree)(name.cast());
            Some(text)
        }
    }

    fn children(&self, window: xlib::Window) -> Vec<xlib::Window> {
        let (mut root, mut parent) = (0, 0);
        let mut children: *mut xlib::Window = ptr::null_mut();
        let mut count = 0u32;
        unsafe {
            if (self.lib.XQueryTree)(
                self.display,
                window,
                &mut root,
                &mut parent,
                &mut children,
                &mut count,
            ) == 0
            {
                return Vec::new();
            }
            let list = if children.is_null() {
                Vec::new()
            } else {
                std::slice::from_raw_parts(children, count as usize).to_vec()
            };
            if !children.is_null() {
                (self.lib.XFree)(children.cast());
            }
            list
        }
    }

    pub fn placed(&self, window: xlib::Window) -> Placed {
        let mut attributes: xlib::XWindowAttributes = unsafe { std::mem::zeroed() };
        unsafe { (self.lib.XGetWindowAttributes)(self.display, window, &mut attributes) };
        Placed {
            window,
            x: attributes.x,
            y: attributes.y,
            width: attributes.width as u32,
            height: attributes.height as u32,
            mapped: attributes.map_state == xlib::IsViewable,
        }
    }

    /// The top-level window whose title contains `title` (the largest, if several).
    pub fn window(&self, title: &str) -> Option<Placed> {
        self.children(self.root())
            .into_iter()
            .filter(|w| self.name_of(*w).is_some_and(|n| n.contains(title)))
            .map(|w| self.placed(w))
            .max_by_key(|p| p.width * p.height)
    }

    /// The window's close button, as a window manager passes it on: WM_DELETE_WINDOW.
    pub fn close(&self, window: xlib::Window) {
        unsafe {
            let protocols = (self.lib.XInternAtom)(self.display, c"WM_PROTOCOLS".as_ptr(), 0);
            let delete = (self.lib.XInternAtom)(self.display, c"WM_DELETE_WINDOW".as_ptr(), 0);
            let mut event: xlib::XEvent = std::mem::zeroed();
            event.client_message.type_ = xlib::ClientMessage;
            event.client_message.window = window;
            event.client_message.message_type = protocols;
            event.client_message.format = 32;
            event.client_message.data.set_long(0, delete as i64);
            event
                .client_message
                .data
                .set_long(1, xlib::CurrentTime as i64);
            (self.lib.XSendEvent)(self.display, window, 0, xlib::NoEventMask, &mut event);
            (self.lib.XFlush)(self.display);
        }
    }

    /// A click of mouse `button` (1 left, 3 right) at (x, y) on the screen.
    pub fn click(&self, x: i32, y: i32, button: u32) {
        let test = XTest::open().expect("libXtst");
        unsafe {
            (test.XTestFakeMotionEvent)(self.display, -1, x, y, 0);
            (test.XTestFakeButtonEvent)(self.display, button, 1, 0);
            (test.XTestFakeButtonEvent)(self.display, button, 0, 20);
            (self.lib.XFlush)(self.display);
        }
    }

    /// The screen's `area` (x, y, width, height) as a PNG.
    pub fn screenshot(&self, path: &Path, area: (i32, i32, u32, u32)) {
        let root = Placed {
            x: area.0,
            y: area.1,
            width: area.2,
            height: area.3,
            ..self.placed(self.root())
        };
        unsafe {
            let image = (self.lib.XGetImage)(
                self.display,
                root.window,
                root.x,
                root.y,
                root.width,
                root.height,
                !0,
                xlib::ZPixmap,
            );
            assert!(!image.is_null(), "cannot read the screen");
            let mut rgb = Vec::with_capacity((root.width * root.height * 3) as usize);
            for y in 0..root.height as i32 {
                for x in 0..root.width as i32 {
                    let pixel = ((*image).funcs.get_pixel.unwrap())(image, x, y);
                    rgb.extend_from_slice(&[(pixel >> 16) as u8, (pixel >> 8) as u8, pixel as u8]);
                }
            }
            ((*image).funcs.destroy_image.unwrap())(image);
            image::save_buffer(path, &rgb, root.width, root.height, image::ColorType::Rgb8)
                .expect("screenshot saved");
        }
    }
}
