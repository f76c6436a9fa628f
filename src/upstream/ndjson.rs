//! Splitting a byte stream into NDJSON lines.
//!
//! Network chunks and lines do not line up: one chunk may hold several lines, one line may span
//! many chunks (tool arguments, logprobs, images). Lines are yielded without their `\n` (and
//! without a trailing `\r`); blank lines are skipped; a line longer than [`MAX_LINE`] is an error.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::error::GatewayError;

/// Longest line accepted from the upstream.
pub const MAX_LINE: usize = 64 * 1024 * 1024;

/// Lines of `body`. An error from `body` is passed on and ends the stream.
pub fn lines<S>(body: S) -> impl Stream<Item = Result<Bytes, GatewayError>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, GatewayError>> + Send + 'static,
{
    async_stream::stream! {
        let mut body = std::pin::pin!(body);
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line = buffer.split_to(end + 1).freeze();
                let line = trim_line(line);
                if !line.is_empty() {
                    yield Ok(line);
                }
            }
            if buffer.len() > MAX_LINE {
                tracing::warn!(len = buffer.len(), "upstream NDJSON line too long");
                yield Err(GatewayError::UpstreamProtocol);
                return;
            }
        }
        let rest = trim_line(buffer.freeze());
        if !rest.is_empty() {
            yield Ok(rest);
        }
    }
}

fn trim_line(mut line: Bytes) -> Bytes {
    while line
        .last()
        .is_some_and(|b| matches!(b, b'\n' | b'\r' | b' ' | b'\t'))
    {
        line.truncate(line.len() - 1);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    async fn collect(chunks: Vec<&'static str>) -> Vec<Result<String, String>> {
        let body = stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes()))),
        );
        lines(body)
            .map(|r| {
                r.map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| e.to_string())
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn lines_split_across_and_within_chunks() {
        let out = collect(vec![
            "{\"a\":1}\n{\"b\"",
            ":2}\r\n\n{\"c\":",
            "3}\n{\"d\":4}",
        ])
        .await;
        assert_eq!(
            out,
            vec![
                Ok("{\"a\":1}".to_owned()),
                Ok("{\"b\":2}".to_owned()),
                Ok("{\"c\":3}".to_owned()),
                Ok("{\"d\":4}".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn errors_end_the_stream() {
        let body = stream::iter(vec![
            Ok(Bytes::from_static(b"{\"a\":1}\n")),
            Err(GatewayError::UpstreamInterrupted),
            Ok(Bytes::from_static(b"{\"b\":1}\n")),
        ]);
        let out: Vec<_> = lines(body).collect().await;
        assert_eq!(out.len(), 2);
        assert!(matches!(out[1], Err(GatewayError::UpstreamInterrupted)));
    }
}
