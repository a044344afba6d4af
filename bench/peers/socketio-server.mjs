// The socket.io chat example's server, exactly: every 'chat message' goes to everyone.
//   node socketio-server.mjs PORT
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] || 3000);
const server = createServer();
const io = new Server(server, { transports: ['websocket'] });
io.on('connection', (socket) => {
  socket.on('chat message', (msg) => {
    io.emit('chat message', msg);
  });
});
server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
