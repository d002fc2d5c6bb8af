<?php
/**
 * Settings → FormRelay, section "Sealed submissions": the seal public key.
 *
 * Part of FormRelay_Admin's page (same form, nonce and capability). The key is
 * public, so the input shows it; when FORMRELAY_SEAL_PUBLIC_KEY is set in
 * wp-config.php the input is disabled and says so. The section says which key id
 * captures are sealed to, or that sealing is off and submissions are stored in
 * clear. FormRelay_Settings_Sanitizer validates a posted key.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The seal public key's section and field.
 */
final class FormRelay_Admin_Seal {

	const SECTION = 'formrelay_seal';

	/**
	 * The section and its field on FormRelay_Admin's page.
	 *
	 * @param string $page The page's slug.
	 * @return void
	 */
	public static function add_fields( $page ) {
		add_settings_section( self::SECTION, __( 'Sealed submissions', 'formrelay-bridge' ), array( __CLASS__, 'render_intro' ), $page );
		add_settings_field(
			'formrelay_seal_public_key',
			__( 'Seal public key', 'formrelay-bridge' ),
			array( __CLASS__, 'render_field' ),
			$page,
			self::SECTION,
			array( 'label_for' => 'formrelay_seal_public_key' )
		);
	}

	/**
	 * Whether captures are sealed, and to which key id.
	 *
	 * @return void
	 */
	public static function render_intro() {
		$key = FormRelay_Seal::current();
		if ( '' !== $key['id'] ) {
			printf(
				'<p class="formrelay-seal-status">%s <code class="formrelay-seal-key-id">%s</code></p>',
				esc_html__( 'Sealing is on: each submission\'s snapshot is encrypted to this public key before it is stored, and only the sidecar, holding the private key, can open it. Key id in use:', 'formrelay-bridge' ),
				esc_html( $key['id'] )
			);
			return;
		}
		echo '<p class="formrelay-seal-status">';
		if ( '' !== $key['text'] ) {
			echo esc_html__( 'The configured seal public key is not 32 bytes in base64, so sealing is off.', 'formrelay-bridge' ) . ' ';
		} else {
			echo esc_html__( 'Sealing is off.', 'formrelay-bridge' ) . ' ';
		}
		echo esc_html__( 'Submissions are stored in clear in FormRelay\'s tables.', 'formrelay-bridge' ) . ' '
			. esc_html__( 'To seal them, run `formrelay keys generate` where the sidecar runs and set the public key it prints here or in wp-config.php; see "Sealed submissions" in FormRelay\'s README.', 'formrelay-bridge' )
			. '</p>';
	}

	/**
	 * The key input (disabled when wp-config.php sets it).
	 *
	 * @return void
	 */
	public static function render_field() {
		$from_constant = FormRelay_Settings::seal_key_from_constant();
		printf(
			'<input type="text" id="formrelay_seal_public_key" name="%1$s" value="%2$s" class="regular-text code" spellcheck="false" autocomplete="off"%3$s />',
			esc_attr( FormRelay_Settings::OPTION . '[seal_public_key]' ),
			esc_attr( FormRelay_Settings::seal_public_key() ),
			disabled( $from_constant, true, false )
		);
		echo '<p class="description formrelay-seal-note">';
		if ( $from_constant ) {
			echo esc_html(
				sprintf(
					/* translators: %s: constant name. */
					__( 'Set in wp-config.php (%s).', 'formrelay-bridge' ),
					FormRelay_Settings::SEAL_CONSTANT
				)
			) . ' ';
		}
		echo esc_html__( 'Standard base64 of 32 bytes (an X25519 public key). Empty: sealing off. A public key is not a secret; the private half stays with the sidecar.', 'formrelay-bridge' ) . '</p>';
	}
}
