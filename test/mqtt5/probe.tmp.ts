import { findTool, makePki, startMosquitto, type Identity } from './broker.ts';
import { createLink } from '../../devices/link.ts';
const ids: Identity[] = [{ name: 't1', domain: 'd1' }, { name: 't2', domain: 'd2' }, { name: 'backend', privileged: true }];
const pki = await makePki((await findTool('openssl'))!, ids, 't1');
const b = await startMosquitto((await findTool('mosquitto'))!, pki, ids);
const mk = (n: string) => { const c = pki.clients.get(n)!; return createLink({ kind: 'iot-core', endpoint: '127.0.0.1', thing: n, certPath: c.certPath, keyPath: c.keyPath, port: b.port, caPath: pki.caPath }); };
const t1 = mk('t1'), be = mk('backend');
await t1.connect(); await be.connect();
console.log('connected');
t1.onMessage((t, p) => console.log('t1 got', t, p));
await t1.subscribe('oc/d1/t1/in/#', 1);
await be.publish('oc/d1/t1/in/offer', { a: 1 }, 1);
try { await t1.subscribe('oc/d2/t2/in/#', 1); console.log('sub outside ok?'); } catch (e) { console.log('sub outside', e); }
try { const r = await t1.publish('oc/d2/t2/in/offer', { x: 1 }, 1); console.log('pub outside ok?', r); } catch (e) { console.log('pub outside', e); }
await new Promise(r => setTimeout(r, 300));
await t1.close(); await be.close();
console.log(b.log());
await b.stop(); await pki.dispose();
