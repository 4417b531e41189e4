"""The dashboard's files (`/dashboard`), served by `stream.runtime.web`: plain HTML, CSS and
JavaScript drawing its charts as SVG; nothing fetched from elsewhere, no build step."""
