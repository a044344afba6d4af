// A ws server broadcasting each text message to every client, as in ws's own example.
//   node ws-server.mjs PORT
import { WebSocketServer, WebSocket } from 'ws';

const port = Number(process.argv[2] || 3001);
const wss = new WebSocketServer({ host: '127.0.0.1', port });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => console.log(`listening on ${port}`));
