//! A TCP proxy that a test can cut, restore and slow down: the database "goes away" or
//! answers late for one server without disturbing any other test.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
    task::JoinHandle,
};

pub struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    /// Milliseconds each chunk waits before it is passed on, either way.
    delay: Arc<AtomicU64>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forwards connections on a new local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let down = Arc::new(AtomicBool::new(false));
        let delay = Arc::new(AtomicU64::new(0));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (down, delay, links) = (Arc::clone(&down), Arc::clone(&delay), Arc::clone(&links));
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    if down.load(Ordering::SeqCst) {
                        // Refused: the connection closes at once.
                        continue;
                    }
                    let delay = Arc::clone(&delay);
                    let link = tokio::spawn(async move {
                        if let Ok(server) = TcpStream::connect(upstream).await {
                            let (client_reads, client_writes) = client.into_split();
                            let (server_reads, server_writes) = server.into_split();
                            tokio::join!(
                                pump(client_reads, server_writes, &delay),
                                pump(server_reads, client_writes, &delay),
                            );
                        }
                    });
                    links.lock().expect("links").push(link);
                }
            }
        });
        Proxy {
            addr,
            down,
            delay,
            links,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    /// Holds every chunk `delay` before passing it on, on open connections and new ones.
    pub fn slow_down(&self, delay: Duration) {
        let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay.store(millis, Ordering::SeqCst);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

/// Copies what `from` reads to `to`, each chunk after the proxy's delay, until either side
/// closes.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: &AtomicU64) {
    let mut chunk = vec![0; 16 * 1024];
    while let Ok(read) = from.read(&mut chunk).await {
        if read == 0 {
            break;
        }
        let millis = delay.load(Ordering::SeqCst);
        if millis > 0 {
            // The fault this proxy injects: a database that answers late.
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        if to.write_all(&chunk[..read]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
