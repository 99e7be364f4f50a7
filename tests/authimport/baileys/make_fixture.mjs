// Makes the Baileys login that tests/authimport imports, with Baileys' own code only (pinned in package.json):
// useMultiFileAuthState, initAuthCreds, getNextPreKeys, configureSuccessfulPairing fed a pair-success stanza signed
// by a made-up account key, an app-state key share and a patch (encodeSyncdPatch), a LID mapping, a privacy token,
// and a fake contact (a second Baileys state) whose 1:1 and group messages our side decrypted.
// Messages the contact encrypted after that, and that nobody decrypted, go to expected.json: the tests decrypt them
// with the converted whatsmeow records.
//
//   cd tests/authimport/baileys && npm ci && node make_fixture.mjs      (rewrites fixture/)
import { mkdtemp, rm, writeFile } from 'fs/promises'
import { tmpdir } from 'os'
import { join } from 'path'
import { createHmac, randomBytes } from 'crypto'
import {
	addTransactionCapability,
	BufferJSON,
	configureSuccessfulPairing,
	Curve,
	encodeSyncdPatch,
	generateSignalPubKey,
	getNextPreKeys,
	newLTHashState,
	proto,
	useMultiFileAuthState,
	WA_ADV_ACCOUNT_SIG_PREFIX
} from '@whiskeysockets/baileys'
import { makeLibSignalRepository } from '@whiskeysockets/baileys/lib/Signal/libsignal.js'
import { storeTcTokensFromIqResult } from '@whiskeysockets/baileys/lib/Utils/tc-token-utils.js'

const OUT = new URL('./fixture/', import.meta.url).pathname
const FOLDER = join(OUT, 'auth_info_baileys')
const ME = { phone: '6281234567890', device: 12, lid: '123456789012345', name: 'Toko Maju, Jakarta' }
const CONTACT = { phone: '6289876543210', lid: '98765432109876' }
const GROUP = '120363025246125888@g.us'
const ME_JID = `${ME.phone}:${ME.device}@s.whatsapp.net`
const ME_LID = `${ME.lid}:${ME.device}@lid`
const CONTACT_PN = `${CONTACT.phone}@s.whatsapp.net`
const CONTACT_LID = `${CONTACT.lid}@lid`
const PRE_KEYS = 30

const logger = {
	level: 'silent', child: () => logger,
	trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}
}

async function state(folder) {
	const { state, saveCreds } = await useMultiFileAuthState(folder)
	const keys = addTransactionCapability(state.keys, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 })
	const auth = { creds: state.creds, keys }
	return { auth, saveCreds, repository: makeLibSignalRepository(auth, logger) }
}

// What WhatsApp's server sends when the phone links this device: pair-success with the ADV identity, signed by the
// account's key (made up here) and HMAC'd with our advSecretKey, as Baileys' configureSuccessfulPairing checks.
function pairSuccess(creds, accountKey) {
	const details = proto.ADVDeviceIdentity.encode({ rawId: 424242, timestamp: 1764000000, keyIndex: 3 }).finish()
	const accountSignature = Curve.sign(
		accountKey.private, Buffer.concat([WA_ADV_ACCOUNT_SIG_PREFIX, details, creds.signedIdentityKey.public])
	)
	const signed = proto.ADVSignedDeviceIdentity.encode({
		details, accountSignatureKey: accountKey.public, accountSignature
	}).finish()
	const hmac = createHmac('sha256', Buffer.from(creds.advSecretKey, 'base64')).update(signed).digest()
	const identity = proto.ADVSignedDeviceIdentityHMAC.encode({ details: signed, hmac }).finish()
	return {
		tag: 'iq', attrs: { id: 'pair-1', from: 's.whatsapp.net', type: 'set' },
		content: [{
			tag: 'pair-success', attrs: {},
			content: [
				{ tag: 'device-identity', attrs: {}, content: identity },
				{ tag: 'platform', attrs: { name: 'smbi' } },
				{ tag: 'device', attrs: { jid: ME_JID, lid: ME_LID } }
			]
		}]
	}
}

function bundle(creds, preKeyId) {
	return {
		registrationId: creds.registrationId,
		identityKey: generateSignalPubKey(creds.signedIdentityKey.public),
		signedPreKey: {
			keyId: creds.signedPreKey.keyId,
			publicKey: generateSignalPubKey(creds.signedPreKey.keyPair.public),
			signature: creds.signedPreKey.signature
		},
		preKey: { keyId: preKeyId, publicKey: null }
	}
}

const b64 = buffer => Buffer.from(buffer).toString('base64')

async function main() {
	await rm(OUT, { recursive: true, force: true })
	const scratch = await mkdtemp(join(tmpdir(), 'baileys-contact-'))
	const me = await state(FOLDER)
	const contact = await state(scratch)
	const creds = me.auth.creds

	// Pre-keys as the socket makes them before uploading (ids 1..30; next id 31).
	const { update } = await getNextPreKeys(me.auth, PRE_KEYS)
	Object.assign(creds, update)

	// Pairing.
	const accountKey = Curve.generateKeyPair()
	const { creds: paired } = configureSuccessfulPairing(pairSuccess(creds, accountKey), creds)
	Object.assign(creds, paired)
	creds.me = { ...creds.me, name: ME.name }
	creds.registered = true

	// LID mappings learnt from the server (the contact's).
	await me.repository.lidMapping.storeLIDPNMappings([{ lid: CONTACT_LID, pn: CONTACT_PN }])

	// The phone shares an app-state key (what processMessage does with appStateSyncKeyShare) ...
	const keyId = Buffer.from([0, 0, 0, 0, 0x1a, 0x2b])
	const keyData = proto.Message.AppStateSyncKeyData.fromObject({
		keyData: randomBytes(32),
		fingerprint: { rawId: 3141592, currentIndex: 2, deviceIndexes: [0, ME.device] },
		timestamp: 1764000100
	})
	await me.auth.keys.set({ 'app-state-sync-key': { [b64(keyId)]: keyData } })
	creds.myAppStateKeyId = b64(keyId)
	// ... and one mutation (mute the contact) moves regular_high to version 1.
	const getKey = async id => (await me.auth.keys.get('app-state-sync-key', [id]))[id]
	const { state: syncState } = await encodeSyncdPatch({
		type: 'regular_high',
		index: ['mute', CONTACT_PN],
		syncAction: { muteAction: { muted: true, muteEndTimestamp: 1764086400 }, timestamp: 1764000200 },
		apiVersion: 2,
		operation: proto.SyncdMutation.SyncdOperation.SET
	}, creds.myAppStateKeyId, newLTHashState(), getKey)
	await me.auth.keys.set({ 'app-state-sync-version': { regular_high: syncState } })

	// A privacy token the server issued for the contact (stored under its LID).
	await storeTcTokensFromIqResult({
		result: { tag: 'iq', attrs: {}, content: [{ tag: 'tokens', attrs: {}, content: [
			{ tag: 'token', attrs: { type: 'trusted_contact', jid: CONTACT_PN, t: '1764000300' }, content: new Uint8Array(randomBytes(24)) }
		] }] },
		keys: me.auth.keys,
		getLIDForPN: pn => me.repository.lidMapping.getLIDForPN(pn)
	})

	// The contact starts a session with our pre-key 30 (its file is then consumed: MAX(id) on disk is 29).
	const preKey = (await me.auth.keys.get('pre-key', [String(PRE_KEYS)]))[String(PRE_KEYS)]
	const ourBundle = bundle(creds, PRE_KEYS)
	ourBundle.preKey.publicKey = generateSignalPubKey(preKey.public)
	await contact.repository.injectE2ESession({ jid: ME_JID, session: ourBundle })
	const send = async text => contact.repository.encryptMessage({ jid: ME_JID, data: Buffer.from(text) })
	const receive = async ({ type, ciphertext }) =>
		Buffer.from(await me.repository.decryptMessage({ jid: CONTACT_LID, type, ciphertext })).toString()
	const m1 = await send('hello 1')
	const m2 = await send('hello 2 (skipped, arrives after the move)')
	const m3 = await send('hello 3')
	const got = [await receive(m1), await receive(m3)]
	if (got.join('|') !== 'hello 1|hello 3') throw new Error(`Baileys decrypted ${got}`)
	// We answer; the contact's next message then starts a new ratchet step that our side has not seen.
	const reply = await me.repository.encryptMessage({ jid: CONTACT_LID, data: Buffer.from('thanks') })
	const answer = await contact.repository.decryptMessage({ jid: ME_JID, type: reply.type, ciphertext: reply.ciphertext })
	if (Buffer.from(answer).toString() !== 'thanks') throw new Error('contact could not decrypt our reply')
	const m4 = await send('hello 4 (new ratchet step, after the move)')

	// Group: the contact's sender key reaches us, we decrypt its 1st and 3rd message.
	const group = text => contact.repository.encryptGroupMessage({ group: GROUP, meId: CONTACT_LID, data: Buffer.from(text) })
	const g1 = await group('group 1')
	await me.repository.processSenderKeyDistributionMessage({
		item: { groupId: GROUP, axolotlSenderKeyDistributionMessage: g1.senderKeyDistributionMessage },
		authorJid: CONTACT_LID
	})
	const g2 = await group('group 2 (skipped, arrives after the move)')
	const g3 = await group('group 3')
	const readGroup = async ({ ciphertext }) =>
		Buffer.from(await me.repository.decryptGroupMessage({ group: GROUP, authorJid: CONTACT_LID, msg: ciphertext })).toString()
	const gotGroup = [await readGroup(g1), await readGroup(g3)]
	if (gotGroup.join('|') !== 'group 1|group 3') throw new Error(`Baileys decrypted ${gotGroup}`)
	const g4 = await group('group 4 (after the move)')

	await me.saveCreds()
	await rm(scratch, { recursive: true, force: true })

	const expected = {
		baileys: '7.0.0-rc14',
		jid: ME_JID,
		lid: ME_LID,
		push_name: ME.name,
		platform: 'smbi',
		registration_id: creds.registrationId,
		account_signature_key: b64(accountKey.public),
		public_keys: {
			noise: b64(creds.noiseKey.public),
			identity: b64(creds.signedIdentityKey.public),
			signed_pre_key: b64(creds.signedPreKey.keyPair.public)
		},
		pre_keys: { generated: PRE_KEYS, consumed: [PRE_KEYS], next_id: creds.nextPreKeyId },
		app_state_key_id: b64(keyId),
		contact: { pn: CONTACT_PN, lid: CONTACT_LID, address: `${CONTACT.lid}_1:0` },
		group: GROUP,
		// Sent by the contact after the fixture was saved; decryptable only with the converted records.
		after_import: {
			session: [
				{ type: m2.type, ciphertext: b64(m2.ciphertext), plaintext: 'hello 2 (skipped, arrives after the move)' },
				{ type: m4.type, ciphertext: b64(m4.ciphertext), plaintext: 'hello 4 (new ratchet step, after the move)' }
			],
			group: [
				{ ciphertext: b64(g2.ciphertext), plaintext: 'group 2 (skipped, arrives after the move)' },
				{ ciphertext: b64(g4.ciphertext), plaintext: 'group 4 (after the move)' }
			]
		}
	}
	await writeFile(join(OUT, 'expected.json'), JSON.stringify(expected, BufferJSON.replacer, 2) + '\n')
	console.log(`wrote ${FOLDER} and expected.json`)
}

await main()
